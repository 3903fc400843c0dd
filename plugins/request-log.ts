import fp from 'fastify-plugin'

/**
 * Every log line of a request names the client, so logins, refreshes and denials carry the IP.
 * Without a trusted proxy the client is the socket's peer, bound when Fastify makes the request's
 * child logger (one pass over the bindings). Behind one, the address is known only once Fastify has
 * read X-Forwarded-For (request.ip), so it is added to that logger in a hook.
 */
export default fp(async (app) => {
  if (app.config.trustProxy === false) {
    app.setChildLoggerFactory((logger, bindings, options, raw) => logger.child({ ...bindings, ip: raw.socket.remoteAddress }, options))
    return
  }
  app.addHook('onRequest', (request, _reply, done) => {
    const log = request.log as typeof request.log & { setBindings?: (bindings: object) => void }
    // Absent when logging is off (logger: false).
    log.setBindings?.({ ip: request.ip })
    done()
  })
}, { name: 'request-log', dependencies: ['config'] })
