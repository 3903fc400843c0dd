import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build, loginAs } from '../helper.js'
import { bodyOf, rawRequest } from './raw-http.js'

// Over real HTTP: inject bypasses Node's parser, where header size and timeouts are enforced.

t.test('the transport limits are the documented ones', async (t) => {
  const app = await build(t)
  await app.ready()
  // maxHeaderSize is kept by Node but missing from its types.
  const server = app.server as typeof app.server & { maxHeaderSize?: number }
  t.equal(server.maxHeaderSize, 16 * 1024, 'request line and headers: 16 KiB')
  t.equal(server.headersTimeout, 10_000, 'headers must arrive within 10 s')
  t.equal(server.requestTimeout, 60_000, 'a whole request within 60 s')
  t.equal(server.timeout, 30_000, 'a socket idle for 30 s is closed')
  t.equal(server.keepAliveTimeout, 72_000, 'an idle keep-alive socket is closed after 72 s')
  t.equal(app.initialConfig.bodyLimit, 1024 * 1024, 'bodies: 1 MiB')
})

t.test('oversized, slow and lying clients are cut off', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  // Started first and awaited last: a client that never finishes its headers (slowloris).
  const slow = rawRequest(port, ['GET /health HTTP/1.1\r\nHost: localhost\r\n', 'X-Slow: 1\r\n'], 16_000)

  const bigHeader = await rawRequest(port, [`GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`])
  t.equal(bigHeader.status, 431, 'a 17 KiB header is a 431')
  t.match(bodyOf(bigHeader), { statusCode: 431, error: 'Request Header Fields Too Large', message: String })

  const bigUrl = await rawRequest(port, [`GET /posts?q=${'a'.repeat(17 * 1024)} HTTP/1.1\r\nHost: localhost\r\n\r\n`])
  t.equal(bigUrl.status, 431, 'a 17 KiB request line too')

  const manyHeaders = Array.from({ length: 1000 }, (_, i) => `X-H${i}: ${'v'.repeat(20)}\r\n`).join('')
  const many = await rawRequest(port, [`GET /health HTTP/1.1\r\nHost: localhost\r\n${manyHeaders}\r\n`])
  t.equal(many.status, 431, 'a thousand headers add up past the limit')

  const fits = await rawRequest(port, [`GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Ok: ${'a'.repeat(8 * 1024)}\r\n\r\n`])
  t.equal(fits.status, 200, 'an 8 KiB header is fine')

  const user = await loginAs(app)
  const declared = await rawRequest(port, [
    `POST /posts HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${user.auth.authorization}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"title":'
  ])
  t.equal(declared.status, 413, 'a body declared at 100 MB is refused before it is read')
  t.match(bodyOf(declared), { statusCode: 413, error: 'Payload Too Large' })

  const chunk = `${(64 * 1024).toString(16)}\r\n${'x'.repeat(64 * 1024)}\r\n`
  const chunked = await rawRequest(port, [
    `POST /posts HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${user.auth.authorization}\r\n` +
    'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    ...Array.from({ length: 20 }, () => chunk)
  ])
  t.equal(chunked.status, 413, 'a chunked body is cut off at 1 MiB too')

  const authBody = await rawRequest(port, [
    'POST /auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20000\r\n\r\n'
  ])
  t.equal(authBody.status, 413, '/auth/* stops at 16 KiB')

  const noHost = await rawRequest(port, ['GET /health HTTP/1.1\r\n\r\n'])
  t.equal(noHost.status, 400, 'HTTP/1.1 without Host is a 400')

  const smuggle = await rawRequest(port, [
    'POST /auth/logout HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
    'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
  ])
  t.equal(smuggle.status, 400, 'Content-Length with Transfer-Encoding (request smuggling) is a 400')

  const timedOut = await slow
  t.equal(timedOut.status, 408, 'headers not finished within the timeout: 408')
  t.ok(timedOut.after !== undefined && timedOut.after >= 9_000 && timedOut.after < 15_000,
    `after about 10 s (${timedOut.after} ms)`)
})
