import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The first step of a shutdown behind a load balancer: keep serving for `ms`, but close every
     * keep-alive connection after its next response, so the balancer moves its traffic elsewhere
     * before the listener closes; no request in flight on a reused connection is lost.
     */
    drain: (ms: number) => Promise<void>
  }
}

/**
 * While the server drains on shutdown, every response says `Connection: close` (Node then closes the
 * connection after it), so a client that keeps its connection alive lets go after its in-flight request
 * instead of sending its next one on a connection about to close. That includes requests that were
 * already running when the drain began, so the header is set at send time, by a hook: a listener added
 * to the HTTP server when the drain starts would miss them, and a proxy reusing their connections then
 * lost a POST in the rolling-restart test (test/services/multiprocess.test.ts). The hook is synchronous
 * and checks one flag: next to nothing outside a drain.
 *
 * Idle connections are not cut when the drain starts: a proxy may be writing a request into one at that
 * moment, and a POST it loses so is never replayed (the rolling-restart test lost one that way, one run
 * in a few). Each is closed after its next response instead; those still idle when the drain ends are
 * closed by `app.close()`, by which time the proxy has stopped keeping connections to this process:
 * every response since the drain began said `Connection: close`, and a connection left idle through the
 * drain was closed by the proxy itself, its idle timeout being shorter than the drain (deploy/nginx.conf).
 */
/**
 * How long a stopping server drains (src/server.ts) before it closes. A proxy's idle timeout for its
 * connections to a process must be shorter (deploy/nginx.conf: 1 s).
 */
export const DRAIN_MS = 2_000

export default fp(async (app) => {
  let closing = false
  const startClosing = () => { closing = true }
  app.decorate('drain', async (ms: number) => {
    startClosing()
    await new Promise((resolve) => setTimeout(resolve, ms))
  })
  app.addHook('preClose', async () => { startClosing() })
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'graceful' })
