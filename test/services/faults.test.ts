import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { buildApp, type App } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { postgresSchema, requiredEnv, testRedis } from '../support/services.js'
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js'

// Outages (deploy/README.md, "Several processes"): losing PostgreSQL or Redis while running gives 503s in the error
// shape (GET /health 503), never a crash and never a hang towards the 60 s request timeout; when the
// service is back, Inkwell serves again by itself. The services themselves are shared with other
// tests and never stopped: a TCP proxy between the app and each one is cut, black-holed and restored.

const SECRET = 'test-secret-that-is-long-enough-0123456789'
const PASSWORD = 'a perfectly fine passphrase'
/** Every request must answer well inside the 60 s request timeout; the slowest path is the 15 s query watchdog (src/db/postgres/engine.ts, watchQueries). */
const ANSWER_WITHIN_MS = 20_000
const UNAVAILABLE = {
  statusCode: 503,
  error: 'Service Unavailable',
  message: 'The service is temporarily unavailable; try again shortly',
  code: 'SERVICE_UNAVAILABLE'
}
/** What a 503 body must never carry: driver or network text, SQL. */
const LEAK = /ECONN|ETIMEDOUT|EPIPE|timeout exceeded|Query read timeout|Connection terminated|Stream isn't writeable|Command timed out|select |insert |"users"|"posts"|postgres|redis|127\.0\.0\.1/i

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Answer { status: number, ms: number, body: string, json: unknown, headers: Headers }

interface Harness {
  app: App
  base: string
  pg: TcpProxy
  redis: TcpProxy
  logs: string[]
  /** One request over real HTTP, timed; a request still unanswered after 40 s fails the test with status 0. */
  call: (method: string, path: string, opts?: { token?: string, body?: unknown }) => Promise<Answer>
}

function portOf (url: string, fallback: number): number {
  const { port } = new URL(url)
  return port === '' ? fallback : Number(port)
}

function withPort (url: string, port: number): string {
  const copy = new URL(url)
  copy.hostname = '127.0.0.1'
  copy.port = String(port)
  return copy.toString()
}

function logCollector (): { stream: Writable, logs: string[] } {
  const logs: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      done()
    }
  })
  return { stream, logs }
}

/** An app on its own PostgreSQL schema and Redis prefix, each reached through a proxy, listening on a free port. */
async function harness (t: Test): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-faults-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const schemaUrl = await postgresSchema(t, 'faults')
  const redisEnv = await testRedis(t, true)
  const pg = await startProxy(portOf(requiredEnv('TEST_DATABASE_URL'), 5432), new URL(schemaUrl).hostname)
  const redis = await startProxy(portOf(requiredEnv('TEST_REDIS_URL'), 6379), new URL(requiredEnv('TEST_REDIS_URL')).hostname)
  const { stream, logs } = logCollector()
  const config = loadConfig({
    JWT_SECRET: SECRET,
    DATABASE_URL: withPort(schemaUrl, pg.port),
    REDIS_URL: withPort(redisEnv.REDIS_URL!, redis.port),
    REDIS_KEY_PREFIX: redisEnv.REDIS_KEY_PREFIX!,
    UPLOADS_DIR: join(dir, 'uploads'),
    LOG_LEVEL: 'warn',
    AUTH_RATE_LIMIT: '100000',
    LOGIN_FAILURE_LIMIT: '1000'
  })
  const app = await buildApp(config, { logStream: stream })
  // Registered after the proxies' and the schema's, so (teardowns running last-in first-out or not)
  // the app closes before its proxies go.
  t.teardown(async () => {
    await pg.restore().catch(() => {})
    await redis.restore().catch(() => {})
    await app.close()
    await pg.close()
    await redis.close()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const call: Harness['call'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = {}
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    const start = Date.now()
    try {
      const res = await fetch(base + path, {
        method,
        headers,
        ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }),
        signal: AbortSignal.timeout(40_000)
      })
      const body = await res.text()
      let json: unknown
      try { json = JSON.parse(body) } catch { json = undefined }
      return { status: res.status, ms: Date.now() - start, body, json, headers: res.headers }
    } catch (err) {
      return { status: 0, ms: Date.now() - start, body: String(err), json: undefined, headers: new Headers() }
    }
  }
  return { app, base, pg, redis, logs, call }
}

/** Registers and logs in a fresh user over HTTP; returns the access token. */
async function newUser (t: Test, h: Harness, name: string): Promise<string> {
  const reg = await h.call('POST', '/auth/register', { body: { email: `${name}@example.com`, username: name, password: PASSWORD } })
  t.equal(reg.status, 201, `register ${name}: 201 (${reg.body})`)
  const token = await login(h, name)
  t.equal(token.status, 200, `login ${name}: 200 (${token.body})`)
  return (token.json as { access_token: string }).access_token
}

const login = (h: Harness, username: string) => h.call('POST', '/auth/token', { body: { username, password: PASSWORD } })

/** A 503 from the error handler's unavailable branch: the exact body, Retry-After, in time, nothing leaked. */
function isUnavailable (t: Test, res: Answer, what: string) {
  t.equal(res.status, 503, `${what}: 503 (got ${res.status} ${res.body.slice(0, 200)})`)
  t.same(res.json, UNAVAILABLE, `${what}: the error shape, code SERVICE_UNAVAILABLE`)
  t.equal(res.headers.get('retry-after'), '5', `${what}: Retry-After: 5`)
  t.notMatch(res.body, LEAK, `${what}: no driver text or SQL in the body`)
  t.ok(res.ms < ANSWER_WITHIN_MS, `${what}: answered in ${res.ms} ms (< ${ANSWER_WITHIN_MS})`)
}

/** GET /health's own 503: the error shape naming what is down, in time. */
function isHealth503 (t: Test, res: Answer, message: string, withinMs: number) {
  t.equal(res.status, 503, `health: 503 (got ${res.status} ${res.body.slice(0, 200)})`)
  t.same(res.json, { statusCode: 503, error: 'Service Unavailable', message },
    `health: the error shape, "${message}" (got ${res.body})`)
  t.ok(res.ms < withinMs, `health: answered in ${res.ms} ms (< ${withinMs})`)
}

/** Polls GET /health until 200; returns the ms it took after restore, or -1. */
async function healthyWithin (h: Harness, ms: number): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    const res = await h.call('GET', '/health')
    if (res.status === 200) return Date.now() - start
    await sleep(200)
  }
  return -1
}

/** Comments the errors logged as 500s ("request failed"), so a failure shows what the app saw. */
function logged500s (t: Test, h: Harness) {
  const seen = new Set<string>()
  for (const line of h.logs) {
    const entry = JSON.parse(line) as { msg?: string, err?: { type?: string, message?: string, stack?: string } }
    if (entry.msg !== 'request failed') continue
    const causes = [...(entry.err?.stack ?? '').matchAll(/^caused by: (.*)$/gm)].map((m) => m[1])
    seen.add(`${entry.err?.type ?? '?'} "${(entry.err?.message ?? '').split('\n')[0]!.slice(0, 40)}…" caused by: ${causes.join(' <- ') || 'nothing'}`)
  }
  for (const text of seen) t.comment(`logged 500: ${text}`)
}

/** The process is alive and the server still answers what needs neither service. */
async function stillServing (t: Test, h: Harness) {
  const res = await h.call('GET', '/no-such-route')
  t.equal(res.status, 404, `the server still answers (404 for an unknown route, ${res.ms} ms)`)
}

/** Everything works again after restore: health, the old token, creating and listing posts. */
async function recovered (t: Test, h: Harness, token: string, label: string) {
  const ms = await healthyWithin(h, 10_000)
  t.ok(ms >= 0, `${label}: /health is 200 again, ${ms} ms after restore`)
  const me = await h.call('GET', '/users/me', { token })
  t.equal(me.status, 200, `${label}: the same token works again (GET /users/me ${me.status} ${me.body.slice(0, 120)})`)
  const post = await h.call('POST', '/posts', { token, body: { title: `After ${label}`, content: 'Back again' } })
  t.equal(post.status, 201, `${label}: a post can be created (${post.status} ${post.body.slice(0, 120)})`)
  const list = await h.call('GET', '/posts')
  t.equal(list.status, 200, `${label}: GET /posts 200`)
}

t.test('PostgreSQL cut: 503s in the error shape with Retry-After, no crash; restored, it serves again by itself', async (t) => {
  const h = await harness(t)
  const token = await newUser(t, h, 'pgcut')
  t.equal((await h.call('GET', '/health')).status, 200, 'healthy before')
  const before = await h.call('POST', '/posts', { token, body: { title: 'Before', content: 'the cut' } })
  t.equal(before.status, 201, 'a post before the cut')

  await h.pg.cut()
  const health = await h.call('GET', '/health')
  isHealth503(t, health, 'Database unavailable', 3_000)
  t.notMatch(health.body, LEAK, 'health: no driver text')
  isUnavailable(t, await h.call('GET', '/users/me', { token }), 'GET /users/me with a valid token (not 401, not 500)')
  isUnavailable(t, await h.call('POST', '/posts', { token, body: { title: 'During', content: 'the cut' } }), 'POST /posts')
  isUnavailable(t, await h.call('GET', '/posts'), 'GET /posts')
  isUnavailable(t, await h.call('GET', `/posts/${(before.json as { id: number }).id}`), 'GET /posts/:id')
  isUnavailable(t, await login(h, 'pgcut'), 'POST /auth/token (login)')
  await stillServing(t, h)
  t.ok(h.logs.some((line) => line.includes('database or Redis unavailable')), 'the outage is in the log')

  logged500s(t, h)
  await h.pg.restore()
  await recovered(t, h, token, 'PostgreSQL restored')
  t.equal((await login(h, 'pgcut')).status, 200, 'login works again')
})

t.test('PostgreSQL black hole: 503 within the pool and query timeouts, never a hang; restored, it recovers', async (t) => {
  const h = await harness(t)
  const token = await newUser(t, h, 'pghang')
  // Warm the pool: several idle connections that will be swallowed by the hole (the query watchdog
  // path), and new ones that will never finish their handshake (the connection-timeout path).
  await Promise.all(Array.from({ length: 4 }, () => h.call('GET', '/posts')))

  h.pg.hang()
  const health = await h.call('GET', '/health')
  isHealth503(t, health, 'Database unavailable', 3_000)
  const answers = await Promise.all([
    h.call('GET', '/users/me', { token }),
    h.call('POST', '/posts', { token, body: { title: 'Into', content: 'the hole' } }),
    h.call('GET', '/posts'),
    h.call('GET', '/posts'),
    h.call('GET', '/posts'),
    h.call('GET', '/posts')
  ])
  const names = ['GET /users/me', 'POST /posts', 'GET /posts #1', 'GET /posts #2', 'GET /posts #3', 'GET /posts #4']
  answers.forEach((res, i) => isUnavailable(t, res, `${names[i]!} (black hole)`))
  t.comment(`black hole answer times: ${answers.map((a, i) => `${names[i]!} ${a.status} ${a.ms} ms`).join(', ')}`)
  // With the hole still open, a later request meets only new connections: the 3 s connection timeout.
  const later = await h.call('GET', '/posts')
  isUnavailable(t, later, 'GET /posts once the pool holds no old connections')
  t.ok(later.ms < 5_000, `that one within the connection timeout: ${later.ms} ms (< 5000)`)
  await stillServing(t, h)
  logged500s(t, h)

  await h.pg.restore()
  await recovered(t, h, token, 'PostgreSQL black hole ended')
})

t.test('Redis cut: /health and login 503, posts still 200; restored, login works again by itself', async (t) => {
  const h = await harness(t)
  const token = await newUser(t, h, 'rediscut')

  await h.redis.cut()
  const health = await h.call('GET', '/health')
  isHealth503(t, health, 'Redis unavailable', 3_000)
  isUnavailable(t, await login(h, 'rediscut'), 'POST /auth/token (login)')
  const wrong = await h.call('POST', '/auth/token', { body: { username: 'rediscut', password: 'not the password at all' } })
  isUnavailable(t, wrong, 'POST /auth/token with a wrong password (not 401: the throttle cannot count it)')
  isUnavailable(t, await h.call('POST', '/auth/register', { body: { email: 'r2@example.com', username: 'rediscut2', password: PASSWORD } }), 'POST /auth/register')
  const posts = await h.call('GET', '/posts')
  t.equal(posts.status, 200, `GET /posts needs no Redis: 200 (${posts.ms} ms)`)
  const me = await h.call('GET', '/users/me', { token })
  t.equal(me.status, 200, `GET /users/me needs no Redis: 200 (${me.ms} ms)`)
  const created = await h.call('POST', '/posts', { token, body: { title: 'No Redis', content: 'needed' } })
  t.equal(created.status, 201, 'POST /posts needs no Redis: 201')
  await stillServing(t, h)

  logged500s(t, h)
  await h.redis.restore()
  const ms = await healthyWithin(h, 10_000)
  t.ok(ms >= 0, `/health 200 again, ${ms} ms after restore`)
  const again = await login(h, 'rediscut')
  t.equal(again.status, 200, `login works again (${again.status} ${again.body.slice(0, 120)})`)
  const bad = await h.call('POST', '/auth/token', { body: { username: 'rediscut', password: 'not the password at all' } })
  t.equal(bad.status, 401, 'a wrong password is a 401 again')
})

t.test('Redis black hole: login answers 503 within ~3 s (2 s command timeout); restored, it recovers', async (t) => {
  const h = await harness(t)
  await newUser(t, h, 'redishang')

  h.redis.hang()
  const health = await h.call('GET', '/health')
  isHealth503(t, health, 'Redis unavailable', 3_000)
  const first = await login(h, 'redishang')
  isUnavailable(t, first, 'POST /auth/token (login) into the hole')
  t.ok(first.ms < 3_500, `login answered within ~3 s: ${first.ms} ms`)
  const second = await login(h, 'redishang')
  isUnavailable(t, second, 'POST /auth/token again, hole still open')
  t.ok(second.ms < 3_500, `again within ~3 s: ${second.ms} ms`)
  const posts = await h.call('GET', '/posts')
  t.equal(posts.status, 200, 'GET /posts needs no Redis: 200')
  await stillServing(t, h)

  logged500s(t, h)
  await h.redis.restore()
  const ms = await healthyWithin(h, 10_000)
  t.ok(ms >= 0, `/health 200 again, ${ms} ms after restore`)
  const again = await login(h, 'redishang')
  t.equal(again.status, 200, `login works again (${again.status} ${again.body.slice(0, 120)})`)
})

t.test('a server started while Redis is unreachable refuses to start, naming REDIS_URL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-faults-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const databaseUrl = await postgresSchema(t, 'faults')
  const redisUrl = requiredEnv('TEST_REDIS_URL')
  const proxy = await startProxy(portOf(redisUrl, 6379), new URL(redisUrl).hostname)
  t.teardown(() => proxy.close())
  const env = (redisPort: number) => loadConfig({
    JWT_SECRET: SECRET,
    DATABASE_URL: databaseUrl,
    REDIS_URL: withPort(redisUrl, redisPort),
    REDIS_KEY_PREFIX: `inkwell-test-faults-${process.pid}:`,
    UPLOADS_DIR: join(dir, 'uploads'),
    LOG_LEVEL: 'silent'
  })

  for (const [what, fault] of [['refused', () => proxy.cut()], ['black-holed', async () => { await proxy.restore(); proxy.hang() }]] as const) {
    await fault()
    const start = Date.now()
    let error: unknown
    let app: App | undefined
    try {
      app = await buildApp(env(proxy.port), { logger: false })
    } catch (err) {
      error = err
    }
    const ms = Date.now() - start
    if (app !== undefined) await app.close()
    t.ok(error instanceof Error, `${what}: buildApp rejects`)
    // Whatever database TEST_REDIS_URL names (/0, /3, or none), the message shows it.
    const database = new URL(redisUrl).pathname.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    t.match(error instanceof Error ? error.message : String(error), new RegExp(`^REDIS_URL: cannot connect to Redis at redis://127\\.0\\.0\\.1:\\d+${database}: `),
      `${what}: the error names REDIS_URL and the address (${error instanceof Error ? error.message : String(error)})`)
    t.ok(ms < 6_000, `${what}: rejects within ${ms} ms (< 6000)`)
  }
})
