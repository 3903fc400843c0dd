import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { eq, sql } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import sharp from 'sharp'
import t from 'tap'
import { METRICS_PATH, UNMATCHED_ROUTE } from '../../plugins/metrics.js'
import type { App } from '../../src/app.js'
import { processAvatar } from '../../src/domain/avatars.js'
import { hashPassword, passwordHashingLoad } from '../../src/domain/passwords.js'
import { build, CREDENTIALS_401, isError, loginAs, PASSWORD } from '../helper.js'
import { increments, parseExposition, series, valueOf, type Exposition } from '../support/prometheus.js'
import { ROOT } from '../support/processes.js'

const TOKEN = 'metrics-test-token-0123456789abcdef'
const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8'
const REQUEST_LABELS = ['method', 'route', 'status_code']

async function scrape (app: App): Promise<Exposition> {
  const res = await app.inject({ url: METRICS_PATH, headers: { authorization: `Bearer ${TOKEN}` } })
  if (res.statusCode !== 200) throw new Error(`scrape: ${res.statusCode} ${res.body}`)
  return parseExposition(res.body)
}

const requestCounts = (e: Exposition) => series(e, 'http_request_duration_seconds_count', REQUEST_LABELS)
const logins = (e: Exposition) => series(e, 'inkwell_logins_total', ['outcome'])
const refusals = (e: Exposition) => series(e, 'inkwell_throttled_requests_total', ['limit'])
const token = (app: App, username: string, password: string) =>
  app.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })

t.test('without METRICS_TOKEN there is no /metrics: a 404 like any unknown route', async (t) => {
  const app = await build(t)
  for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }]) {
    const res = await app.inject({ url: METRICS_PATH, headers })
    isError(t, res, 404, 'Route GET /metrics not found', `GET /metrics ${Object.keys(headers).length > 0 ? 'with' : 'without'} a token`)
    t.equal(res.json().code, 'ROUTE_NOT_FOUND', 'the code of an unknown route')
  }
  t.notOk(app.hasRoute({ method: 'GET', url: METRICS_PATH }), 'no such route')
})

t.test('with METRICS_TOKEN, /metrics answers only the bearer of that token, with the one 401 otherwise', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  const refused: Array<[string, Record<string, string>, string?]> = [
    ['no Authorization header', {}],
    ['a wrong token of the same length', { authorization: `Bearer ${TOKEN.slice(0, -1)}X` }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, 16)}` }],
    ['the token and more', { authorization: `Bearer ${TOKEN}x` }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
    ['the scheme alone', { authorization: 'Bearer' }],
    ['an extra part', { authorization: `Bearer ${TOKEN} extra` }],
    ['an access token of the API', { authorization: `Bearer ${(await loginAs(app)).access}` }],
    ['the token in the query string', {}, `?token=${TOKEN}`]
  ]
  for (const [what, headers, query] of refused) {
    const res = await app.inject({ url: `${METRICS_PATH}${query ?? ''}`, headers })
    t.equal(res.statusCode, 401, `${what}: 401`)
    t.equal(res.headers['www-authenticate'], 'Bearer', `${what}: WWW-Authenticate: Bearer`)
    t.equal(res.body, JSON.stringify(CREDENTIALS_401), `${what}: the API's one 401 body, byte for byte`)
    t.notOk(res.body.includes('http_request'), `${what}: no metrics`)
  }

  const head = await app.inject({ method: 'HEAD', url: METRICS_PATH })
  t.same([head.statusCode, head.headers['www-authenticate']], [401, 'Bearer'], 'HEAD without the token: 401 too')
  t.equal((await app.inject({ method: 'HEAD', url: METRICS_PATH, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200, 'HEAD with it: 200')

  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    const res = await app.inject({ url: METRICS_PATH, headers: { authorization: `${scheme} ${TOKEN}` } })
    t.equal(res.statusCode, 200, `${scheme} <token>: 200`)
    t.equal(res.headers['content-type'], PROMETHEUS_TEXT, 'Prometheus text format 0.0.4')
    t.equal(res.headers['cache-control'], 'no-store', 'never cached')
    const exposition = parseExposition(res.body)
    t.ok(exposition.samples.length > 50, `every line parses (${exposition.samples.length} samples)`)
    t.equal(exposition.types.get('http_request_duration_seconds'), 'histogram')
    t.equal(exposition.types.get('inkwell_logins_total'), 'counter')
    t.ok((valueOf(exposition, 'process_cpu_user_seconds_total') ?? 0) > 0, 'the default process metrics are there')
    t.ok((valueOf(exposition, 'process_resident_memory_bytes') ?? 0) > 1e6, 'with the resident memory')
  }
  const counted = [...requestCounts(await scrape(app)).keys()]
  t.notOk(counted.some((key) => key.includes(METRICS_PATH)), `scrapes, refused ones included, are not counted (${counted.join(', ')})`)
})

t.test('requests, logins and throttled logins are counted exactly, by route pattern, never by URL', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN, LOGIN_FAILURE_LIMIT: '1' })
  const author = await loginAs(app)
  const post = await app.inject({ method: 'POST', url: '/posts', headers: author.auth, payload: { title: 'Counted', content: 'Once' } })
  t.equal(post.statusCode, 201)
  const id = post.json().id as number
  const before = await scrape(app)

  const answers: Array<[string, LightMyRequestResponse, number]> = [
    ['a post', await app.inject({ url: `/posts/${id}` }), 200],
    ['a missing post', await app.inject({ url: '/posts/999999' }), 404],
    ['an unknown route', await app.inject({ url: '/no/such/route/12345' }), 404],
    ['a wrong password', await token(app, author.username, 'not the right passphrase'), 401],
    ['the next attempt on that account', await token(app, author.username, PASSWORD), 429],
    ['a good login on another account', await token(app, (await loginAs(app)).username, PASSWORD), 200]
  ]
  for (const [what, res, status] of answers) t.equal(res.statusCode, status, `${what}: ${status}`)
  const after = await scrape(app)

  t.same(increments(requestCounts(before), requestCounts(after)), {
    [`GET /posts/:id 200`]: 1,
    [`GET /posts/:id 404`]: 1,
    [`GET ${UNMATCHED_ROUTE} 404`]: 1,
    'POST /auth/token 401': 1,
    'POST /auth/token 429': 1,
    'POST /auth/token 200': 2 // the good login, and loginAs's own
  }, 'each request once, under its route pattern and status; nothing else')
  t.notOk(after.samples.some((s) => /999999|12345|no\/such/.test(s.labels.route ?? '')), 'no raw URL or id in any label')
  t.same(increments(logins(before), logins(after)), { bad_credentials: 1, throttled: 1, success: 2 }, 'logins by outcome')
  t.same(increments(refusals(before), refusals(after)), { login_failures: 1 }, 'one refusal, by the login-failure limit')
  t.same([...logins(after).keys()].sort(), ['bad_code', 'bad_credentials', 'mfa_required', 'password_changed', 'success', 'throttled'], 'every outcome has a series, zero or not')

  // The histogram agrees with itself: every request falls in +Inf, and took some time.
  const labels = { method: 'GET', route: '/posts/:id', status_code: '200' }
  const count = valueOf(after, 'http_request_duration_seconds_count', labels)
  t.equal(valueOf(after, 'http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }), count, '+Inf bucket = count')
  const sum = valueOf(after, 'http_request_duration_seconds_sum', labels) ?? 0
  t.ok(sum > 0 && sum < 5, `the duration is in seconds (${sum})`)
  const tokenSum = (e: Exposition) => valueOf(e, 'http_request_duration_seconds_sum', { method: 'POST', route: '/auth/token', status_code: '200' }) ?? 0
  t.ok(tokenSum(after) - tokenSum(before) > 0.005, `a login's duration includes its argon2 verification (${tokenSum(after) - tokenSum(before)} s)`)
})

t.test('a login whose password is replaced while argon2 verifies it is counted as password_changed', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  const alice = await loginAs(app)
  const before = await scrape(app)
  // Hashes queued ahead of the login keep it waiting for argon2 (its user row already read) long
  // enough for the change below to land before it writes its session.
  let finished = 0
  const ahead = Array.from({ length: 3 * Math.max(1, availableParallelism() - 1) }, () =>
    hashPassword('a passphrase to keep argon2 busy').then(() => { finished++ }))
  const pending = token(app, alice.username, PASSWORD)
  const loginQueued = () => {
    const { running, waiting } = passwordHashingLoad()
    return running + waiting === ahead.length - finished + 1
  }
  for (const deadline = Date.now() + 10_000; !loginQueued() && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 1))
  t.ok(loginQueued(), 'the login has read the account and waits for argon2')
  const { users } = app.db.t
  await app.db.transaction((tx) => tx.q.update(users).set({ passwordHash: 'replaced meanwhile' }).where(eq(users.id, alice.id)))
  const [res] = await Promise.all([pending, ...ahead])
  isError(t, res, 401, 'Incorrect username or password', 'the login')
  const after = await scrape(app)
  t.same(increments(logins(before), logins(after)), { password_changed: 1 }, 'counted as password_changed, not as a success or bad credentials')
})

t.test('the /auth rate limit and the password asked again are counted as refusals, not as logins', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN, AUTH_RATE_LIMIT: '3', LOGIN_FAILURE_LIMIT: '1' })
  const alice = await loginAs(app) // the first /auth request of this client's minute
  const before = await scrape(app)

  const change = () => app.inject({
    method: 'PUT', url: '/users/me/password', headers: alice.auth,
    payload: { current_password: 'not the right passphrase', new_password: 'another fine passphrase' }
  })
  t.equal((await change()).statusCode, 400, 'a wrong current password: 400')
  isError(t, await change(), 429, 'Too many failed logins; try again later', 'the next one')
  const logout = () => app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: 'x' } })
  t.same([(await logout()).statusCode, (await logout()).statusCode, (await logout()).statusCode], [204, 204, 429], 'the fourth /auth request of the minute: 429')
  const after = await scrape(app)

  t.same(increments(refusals(before), refusals(after)), { login_failures: 1, auth_rate_limit: 1 }, 'one refusal of each limit')
  t.same(increments(logins(before), logins(after)), {}, 'no login was attempted')
  t.same(increments(requestCounts(before), requestCounts(after)), {
    'PUT /users/me/password 400': 1,
    'PUT /users/me/password 429': 1,
    'POST /auth/logout 204': 2,
    'POST /auth/logout 429': 1
  }, 'and each request once')
})

t.test('argon2 and image work: how many run and wait, read at the moment of the scrape', async (t) => {
  const app = await build(t)
  const read = async () => parseExposition(await app.metrics.registry.metrics())
  const idle = await read()
  for (const name of ['inkwell_argon2_in_flight', 'inkwell_argon2_queued', 'inkwell_image_jobs_in_flight', 'inkwell_image_jobs_queued', 'inkwell_avatar_uploads_in_flight']) {
    t.equal(valueOf(idle, name), 0, `${name} is 0 at rest`)
  }

  // The limiter lets (cores - 1) hashes run at once: three more than that must wait.
  const slots = Math.max(1, availableParallelism() - 1)
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#08f' } }).png().toBuffer()
  // Nothing below yields to the event loop before the reading, so no job can finish in between.
  const hashes = Array.from({ length: slots + 3 }, () => hashPassword('a passphrase to keep argon2 busy'))
  const images = [1, 2, 3].map(() => processAvatar(png))
  const busy = await read()
  t.equal(valueOf(busy, 'inkwell_argon2_in_flight'), slots, `${slots} hashing`)
  t.equal(valueOf(busy, 'inkwell_argon2_queued'), 3, 'three waiting')
  t.equal(valueOf(busy, 'inkwell_image_jobs_in_flight'), 2, 'two images processed at a time')
  t.equal(valueOf(busy, 'inkwell_image_jobs_queued'), 1, 'the third waits')
  await Promise.all([...hashes, ...images])
  const done = await read()
  t.same(['inkwell_argon2_in_flight', 'inkwell_argon2_queued', 'inkwell_image_jobs_in_flight', 'inkwell_image_jobs_queued'].map((n) => valueOf(done, n)),
    [0, 0, 0, 0], 'back to 0 when the work is done')
})

t.test('an avatar upload holds its slot while its body arrives, and the gauge shows it', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  const alice = await loginAs(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const inFlight = async () => valueOf(await scrape(app), 'inkwell_avatar_uploads_in_flight')

  // Headers and the start of a 1 MB body, then nothing: the upload waits for the rest.
  const boundary = 'metrics-test-boundary'
  const upload = httpRequest({
    host: '127.0.0.1', port, method: 'PUT', path: '/users/me/avatar',
    headers: { ...alice.auth, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(1024 * 1024) }
  })
  const ended = new Promise<void>((resolve) => { upload.on('error', () => resolve()); upload.on('close', () => resolve()) })
  upload.write(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="a.png"\r\ncontent-type: image/png\r\n\r\n`)
  upload.flushHeaders()
  let seen: number | undefined
  for (let i = 0; i < 100 && seen !== 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    seen = await inFlight()
  }
  t.equal(seen, 1, 'one upload in flight')
  const second = await app.inject({ method: 'PUT', url: '/users/me/avatar', headers: { ...alice.auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: '' })
  t.equal(second.statusCode, 429, 'the same user meanwhile: 429')
  t.equal(valueOf(await scrape(app), 'inkwell_throttled_requests_total', { limit: 'avatar_upload_per_user' }), 1, 'counted as a refusal of the per-user cap')

  upload.destroy()
  await ended
  for (let i = 0; i < 100 && seen !== 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    seen = await inFlight()
  }
  t.equal(seen, 0, 'the slot is given back when the client goes')
})

t.test('database pool use is read from the PostgreSQL pool at each scrape; SQLite has no pool', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN, DATABASE_POOL_SIZE: '2' })
  const names = ['inkwell_db_pool_connections', 'inkwell_db_pool_idle_connections', 'inkwell_db_pool_waiting_queries', 'inkwell_db_pool_max_connections']
  if (app.db.engine === 'sqlite') {
    const exposition = await scrape(app)
    t.same(exposition.samples.filter((s) => s.name.startsWith('inkwell_db_pool')), [], 'no pool metric on SQLite')
    t.equal(app.db.poolUse, undefined, 'and no pool to read')
    return
  }
  // Two transactions hold both connections until the scrape is done; a third query waits for one of
  // them. (Held by the test rather than by pg_sleep: under a loaded machine a fixed sleep either ended
  // before the scrape or outlasted the pool's 3 s wait for a connection.)
  let release = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const sleeping = [1, 2].map(() => app.db.transaction(async (tx) => { await tx.q.execute(sql`select 1`); await held }))
  // drizzle's queries are lazy: Promise.resolve calls `then`, which sends it.
  const waiting = Promise.resolve(app.db.q.execute(sql`select 1`))
  for (let i = 0; i < 500 && (app.db.poolUse!().total < 2 || app.db.poolUse!().waiting < 1); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const busy = await scrape(app)
  t.same(names.map((n) => valueOf(busy, n)), [2, 0, 1, 2], 'two connections, none idle, one query waiting, at most two')
  t.equal(busy.types.get('inkwell_db_pool_waiting_queries'), 'gauge')
  release()
  await Promise.all([...sleeping, waiting])
  const rested = await scrape(app)
  t.same(names.map((n) => valueOf(rested, n)), [2, 2, 0, 2], 'afterwards both idle, nothing waiting')
})

t.test('/metrics is not part of the OpenAPI document, served or committed', async (t) => {
  const app = await build(t, { METRICS_TOKEN: TOKEN })
  t.ok(app.hasRoute({ method: 'GET', url: METRICS_PATH }), 'the route exists')
  const served = (await app.inject({ url: '/docs/json' })).json() as { paths: Record<string, unknown> }
  t.ok(Object.keys(served.paths).length > 10, 'the document lists the API')
  t.notOk(Object.keys(served.paths).some((p) => p.includes('metrics')), 'but not /metrics')
  const committed = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8')) as { paths: Record<string, unknown> }
  t.notOk(Object.keys(committed.paths).some((p) => p.includes('metrics')), 'nor does openapi.json')
})
