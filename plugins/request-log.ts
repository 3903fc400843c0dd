import fp from 'fastify-plugin'

/** Every log line of a request names the client, so logins, refreshes and denials carry the IP. */
export default fp(async (app) => {
  // setBindings adds to the request's own child logger instead of making a second one per request.
  app.addHook('onRequest', (request, _reply, done) => {
    const log = request.log as typeof request.log & { setBindings?: (bindings: object) => void }
    // Absent when logging is off (logger: false).
    log.setBindings?.({ ip: request.ip })
    done()
  })
}, { name: 'request-log' })
