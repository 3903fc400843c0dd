// The drain before a shutdown, over real keep-alive connections: until it starts responses keep the
// connection open; once it starts, every response says `Connection: close` and the server closes the
// connection after it, errors and 404s included, and the app still serves meanwhile. Idle connections
// are not cut: the next response on each closes it.
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import { build } from '../helper.js'

interface Answer { status: number, headers: IncomingHttpHeaders, socket: Socket, socketClosed: Promise<boolean> }

/** One GET on `agent`; `socketClosed` settles true if the server closes that socket within a second. */
function get (port: number, path: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume()
      const socket = res.socket
      const socketClosed = new Promise<boolean>((done) => {
        const timer = setTimeout(() => done(false), 1000)
        socket.once('close', () => { clearTimeout(timer); done(true) })
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, socket, socketClosed }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('once the drain starts, every response closes its keep-alive connection', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())

  const before = await get(port, '/health', agent)
  t.equal(before.status, 200)
  t.equal(before.headers.connection, 'keep-alive', 'before the drain: keep-alive')
  t.equal(await before.socketClosed, false, 'and the connection stays open')

  // An idle connection is left open: a proxy may be sending a request down it at this very moment,
  // and closing it then loses that request (nginx never replays a POST). Its next response closes it.
  const drained = app.drain(1500)
  let idleClosed = false
  before.socket.once('close', () => { idleClosed = true })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(idleClosed, false, 'the drain leaves the idle keep-alive connection open')
  const reused = await get(port, '/health', agent)
  t.equal(reused.socket, before.socket, 'the next request goes down that same connection')
  t.same([reused.status, reused.headers.connection, await reused.socketClosed], [200, 'close', true],
    'and is served, with Connection: close, then the connection is closed')
  for (const [path, status] of [['/health', 200], ['/posts', 200], ['/no-such-route', 404], ['/posts/abc', 400]] as const) {
    const res = await get(port, path, agent)
    t.equal(res.status, status, `${path}: served while draining`)
    t.equal(res.headers.connection, 'close', `${path}: Connection: close`)
    t.equal(await res.socketClosed, true, `${path}: the server closed the connection after the response`)
    t.ok(res.headers['x-request-id'], `${path}: the other headers are still there`)
  }
  await drained
})
