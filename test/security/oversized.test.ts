// A client that sends too much gets its 413, not a reset connection, even while it is still sending:
// the rest of a refused body is read and thrown away (within bounds) instead of the socket being closed.
import net, { type AddressInfo } from 'node:net'
import t from 'tap'
import { build, loginAs } from '../helper.js'

const THREE_MB = 3 * 1024 * 1024

t.test('thirty 3 MB bodies at once over fetch: thirty 413s, no EPIPE', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const body = JSON.stringify({ title: 'x', content: 'y'.repeat(THREE_MB) })
  const outcomes = await Promise.all(Array.from({ length: 30 }, async () => {
    try {
      const res = await fetch(`${base}/posts`, { method: 'POST', headers: { ...user.auth, 'content-type': 'application/json' }, body })
      const json = await res.json() as { statusCode?: number }
      return `${res.status}/${json.statusCode}`
    } catch (err) {
      return String((err as { cause?: { code?: string } }).cause?.code ?? err)
    }
  }))
  t.same(outcomes, outcomes.map(() => '413/413'), `every client read its 413 in the error shape (${[...new Set(outcomes)].join(', ')})`)
  const form = await fetch(`${base}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=${'u'.repeat(THREE_MB)}` })
  t.equal(form.status, 413, 'a form body over the /auth limit too')
  await form.arrayBuffer()
})

t.test('over a raw socket: the 413 arrives while the body is still being sent, and the socket is not reset', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const result = await new Promise<{ response: string, sentAfterResponse: number, error?: string, total: number }>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let response = ''
    let sent = 0
    let sentAtResponse = -1
    let error: string | undefined
    socket.on('data', (d) => {
      if (sentAtResponse < 0) sentAtResponse = sent
      response += d.toString()
    })
    socket.on('error', (e: NodeJS.ErrnoException) => { error = e.code })
    socket.on('close', () => resolve({ response, sentAfterResponse: sent - sentAtResponse, total: sent, ...(error !== undefined && { error }) }))
    socket.write(`POST /auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${THREE_MB}\r\n\r\n`)
    const chunk = Buffer.alloc(64 * 1024, 'a')
    const pump = () => {
      while (sent < THREE_MB) {
        sent += chunk.length
        // Slow enough that the answer comes long before the last byte.
        if (sent % (512 * 1024) === 0) return setTimeout(pump, 20)
        if (!socket.write(chunk)) return socket.once('drain', pump)
      }
      setTimeout(() => socket.end(), 200)
    }
    pump()
  })
  t.match(result.response, /^HTTP\/1\.1 413 /, 'a 413')
  t.match(result.response, /"statusCode":413/, 'in the error shape')
  t.ok(result.sentAfterResponse > 0, `the answer came while the client was still sending (${result.sentAfterResponse} bytes after it)`)
  t.equal(result.total, THREE_MB, 'the client could send its whole body')
  t.equal(result.error, undefined, 'without a reset or a broken pipe')
})

t.test('the rest of a refused body is read only up to its bound: past 64 MB the socket is cut', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const declared = 1024 * 1024 * 1024
  const result = await new Promise<{ response: string, sent: number }>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let response = ''
    let sent = 0
    let closed = false
    socket.on('data', (d) => { response += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => { closed = true; resolve({ response, sent }) })
    socket.write(`POST /auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`)
    const chunk = Buffer.alloc(256 * 1024, 'a')
    const pump = () => {
      while (!closed && sent < declared) {
        sent += chunk.length
        if (!socket.write(chunk)) return socket.once('drain', pump)
      }
    }
    pump()
  })
  t.match(result.response, /^HTTP\/1\.1 413 /, 'the client read its 413 first')
  t.ok(result.sent > 64 * 1024 * 1024, `the server read past the 413 up to its bound (${result.sent} bytes written)`)
  t.ok(result.sent < declared, 'and then closed the connection instead of reading a gigabyte')
})
