import fp from 'fastify-plugin'

/** Every log line of a request names the client, so logins, refreshes and denials carry the IP. */
export default fp(async (app) => {
  app.addHook('onRequest', async (request) => {
    request.log = request.log.child({ ip: request.ip })
  })
}, { name: 'request-log' })
