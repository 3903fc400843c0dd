import { Writable } from 'node:stream'
import t from 'tap'
import { build, loginAs, PASSWORD } from '../helper.js'

const shape = (statusCode: number, error: string) => ({ statusCode, error, message: String })

t.test('every error has the one shape, and a 500 says nothing more', async (t) => {
  const app = await build(t)
  app.get('/t/boom', async () => {
    throw new Error('SQLITE_ERROR: no such table: secrets at /srv/app.js:12')
  })
  const user = await loginAs(app)

  const missing = await app.inject({ url: '/no/such/route' })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), shape(404, 'Not Found'))

  const boom = await app.inject({ url: '/t/boom' })
  t.equal(boom.statusCode, 500)
  t.equal(boom.body, JSON.stringify({ statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }))

  const badJson = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: '{"email": ' })
  t.equal(badJson.statusCode, 400)
  t.equal(badJson.json().message, 'Body is not valid JSON', 'no parser message leaks')

  const xml = await app.inject({ method: 'POST', url: '/posts', headers: { ...user.auth, 'content-type': 'application/xml' }, payload: '<post/>' })
  t.equal(xml.statusCode, 415)
  t.match(xml.json(), shape(415, 'Unsupported Media Type'))

  const huge = await app.inject({
    method: 'POST', url: '/posts', headers: user.auth,
    payload: { title: 't', content: 'x'.repeat(1024 * 1024 + 1) }
  })
  t.equal(huge.statusCode, 413, 'a body over 1 MiB is a 413')
  t.match(huge.json(), shape(413, 'Payload Too Large'))

  const bigLogin = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'x', password: 'y', pad: 'z'.repeat(17 * 1024) } })
  t.equal(bigLogin.statusCode, 413, '/auth/* takes small bodies only')

  const bigForm = await app.inject({
    method: 'POST', url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `username=x&password=y&pad=${'z'.repeat(17 * 1024)}`
  })
  t.equal(bigForm.statusCode, 413, 'form bodies too')

  const validation = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'nope' } })
  t.equal(validation.statusCode, 400)
  t.match(validation.json(), { ...shape(400, 'Bad Request'), code: 'FST_ERR_VALIDATION' })
})

t.test('health answers 200 while the database does, 503 when it does not', async (t) => {
  const app = await build(t)
  const ok = await app.inject({ url: '/health' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { status: 'ok' })
  await app.db.close()
  const down = await app.inject({ url: '/health' })
  t.equal(down.statusCode, 503)
  t.same(down.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Database unavailable' })
})

t.test('the log names the client: the socket\'s peer, or behind a trusted proxy the forwarded address', async (t) => {
  for (const [env, headers, remoteAddress, expected] of [
    [{}, { 'x-forwarded-for': '203.0.113.9' }, '192.0.2.1', '192.0.2.1'],
    [{ TRUST_PROXY: '192.0.2.1' }, { 'x-forwarded-for': '203.0.113.9' }, '192.0.2.1', '203.0.113.9'],
    [{ TRUST_PROXY: '192.0.2.1' }, { 'x-forwarded-for': '203.0.113.9' }, '192.0.2.77', '192.0.2.77']
  ] as const) {
    let log = ''
    const stream = new Writable({ write (chunk, _enc, done) { log += chunk.toString(); done() } })
    const app = await build(t, { LOG_LEVEL: 'info', ...env }, { logStream: stream })
    await app.inject({ url: '/users/me', headers: { ...headers, authorization: 'Bearer not.a.token' }, remoteAddress })
    const lines = log.trim().split('\n').map((l) => JSON.parse(l) as { msg?: string, ip?: string, reqId?: string, req?: { remoteAddress?: string } })
    const refused = lines.find((l) => l.msg === 'authentication refused')
    t.equal(refused?.ip, expected, `TRUST_PROXY=${'TRUST_PROXY' in env ? env.TRUST_PROXY : '(off)'}, peer ${remoteAddress}: ip ${expected}`)
    // The first line is written before any hook runs: it names the client in its `req` (request.ip).
    const incoming = lines.find((l) => l.msg === 'incoming request')
    t.equal(incoming?.req?.remoteAddress, expected, 'the incoming-request line names it too')
    const later = lines.filter((l) => l.reqId !== undefined && l !== incoming)
    t.ok(later.length >= 2 && later.every((l) => l.ip === expected), 'and every later line of the request (refused, completed)')
  }
})

t.test('no token, password, hash or authorization header is ever logged', async (t) => {
  let log = ''
  const stream = new Writable({ write (chunk, _enc, done) { log += chunk.toString(); done() } })
  const app = await build(t, { LOG_LEVEL: 'trace' }, { logStream: stream })
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'log@example.com', username: 'logger', password: PASSWORD } })
  t.equal(reg.statusCode, 201)
  const tokens = (await app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'logger', password: PASSWORD } })).json()
  await app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'logger', password: 'wrong password!' } })
  await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${tokens.access_token}` } })
  await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token } })
  await app.inject({ url: '/users/me', headers: { authorization: 'Bearer not.a.token' } })
  const refreshed = (await app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'logger', password: PASSWORD } })).json()
  t.equal((await app.inject({ url: '/admin/users', headers: { authorization: `Bearer ${refreshed.access_token}` } })).statusCode, 403)

  t.ok(log.length > 0, 'something was logged')
  t.match(log, /login succeeded/)
  t.match(log, /login failed/)
  t.match(log, /tokens refreshed/)
  t.match(log, /authentication refused/)
  const lines = log.trim().split('\n').map((l) => JSON.parse(l))
  for (const msg of ['login succeeded', 'login failed', 'tokens refreshed', 'authentication refused']) {
    const line = lines.find((l) => l.msg === msg)
    t.equal(line?.ip, '127.0.0.1', `"${msg}" names the client IP`)
    t.ok(line?.reqId, `"${msg}" carries the request id`)
  }
  t.ok(lines.find((l) => l.msg === 'tokens refreshed')?.userId, 'a refresh names the user')
  const denied = lines.find((l) => l.msg === 'access denied')
  t.same([denied?.userId, denied?.ip, denied?.code], [reg.json().id, '127.0.0.1', 'ROLE_REQUIRED'], 'a denial names the user, the client and why')
  for (const secret of [PASSWORD, 'wrong password!', tokens.access_token, tokens.refresh_token, refreshed.access_token, 'not.a.token', '$argon2id$']) {
    t.notOk(log.includes(secret), `the log does not contain ${secret.slice(0, 12)}…`)
  }
})
