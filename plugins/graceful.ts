import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The first step of a shutdown behind a load balancer: keep serving for `ms`, but close every
     * keep-alive connection after its next response (idle ones at once), so the balancer moves its
     * traffic elsewhere before the listener closes; no request in flight on a reused connection is lost.
     */
    drain: (ms: number) => Promise<void>
  }
}

/**
 * While the server drains on shutdown, every response says `Connection: close`, so a client that
 * keeps its connection alive lets go after its in-flight request instead of holding close open.
 */
export default fp(async (app) => {
  let closing = false
  app.decorate('drain', async (ms: number) => {
    closing = true
    app.server.closeIdleConnections()
    await new Promise((resolve) => setTimeout(resolve, ms))
  })
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })
}, { name: 'graceful' })
