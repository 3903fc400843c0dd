import type { IncomingMessage, ServerResponse } from 'node:http'
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

/** Node closes the connection after a response that says `Connection: close`. */
function closeAfterResponse (_request: IncomingMessage, response: ServerResponse): void {
  response.setHeader('connection', 'close')
}

/**
 * While the server drains on shutdown, every response says `Connection: close`, so a client that
 * keeps its connection alive lets go after its in-flight request instead of holding close open.
 * The header is set by a listener of the HTTP server added when the drain starts (first, before
 * Fastify's), so requests pay nothing for it the rest of the time. Responses already under way when it
 * starts are not changed: their connections are closed with the idle ones at the end.
 */
export default fp(async (app) => {
  let closing = false
  const startClosing = () => {
    if (closing) return
    closing = true
    app.server.prependListener('request', closeAfterResponse)
  }
  app.decorate('drain', async (ms: number) => {
    startClosing()
    app.server.closeIdleConnections()
    await new Promise((resolve) => setTimeout(resolve, ms))
  })
  app.addHook('preClose', async () => { startClosing() })
}, { name: 'graceful' })
