// Three real Inkwell processes on one PostgreSQL database and one Redis behave as one server
// (deploy/README.md, "Several processes"): every request goes to the next process in turn. Then nginx, configured by
// deploy/nginx.conf, in front of them.
//
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
//     npx tap test/services/multiprocess.test.ts
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import sharp from 'sharp'
import t from 'tap'
import { program } from '../support/programs.js'
import {
  ROOT, requestAt, startCluster, startNginx, startProcess, freePort,
  type Cluster, type InkwellProcess, type Reply
} from '../support/processes.js'

const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL
const TEST_REDIS_URL = process.env.TEST_REDIS_URL
if (TEST_DATABASE_URL === undefined || TEST_DATABASE_URL === '' || TEST_REDIS_URL === undefined || TEST_REDIS_URL === '') {
  throw new Error('test/services needs a PostgreSQL server and a Redis server: set TEST_DATABASE_URL ' +
    '(e.g. postgres://postgres@127.0.0.1:5432/test; the test creates and drops a database of its own there) ' +
    'and TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0; the test uses keys under a unique prefix and deletes them)')
}

const RUN = randomBytes(4).toString('hex')
const PASSWORD = 'a perfectly fine passphrase'
const ADMIN = { email: `admin-${RUN}@example.com`, username: `admin-${RUN}`, password: 'the admin passphrase of this run' }
const AUTH_RATE_LIMIT = 30
const LOGIN_FAILURE_LIMIT = 3
// The app tells clients apart by address; each check that counts per client uses one of its own
// (Linux routes all of 127.0.0.0/8 to the loopback interface).
const CLIENT = {
  journeys: '127.0.0.1',
  throttle: '127.0.0.5',
  registrations: '127.0.0.6',
  viaNginx: '127.0.0.7',
  rateLimit: '127.0.0.9',
  burst: '127.0.0.10'
}

/** A database of our own on the server TEST_DATABASE_URL names; dropped at the end. */
async function createDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  const name = `inkwell_mp_${RUN}`
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(TEST_DATABASE_URL as string)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL })
      await client.connect()
      try {
        await client.query(`drop database if exists ${name} with (force)`)
      } finally {
        await client.end()
      }
    }
  }
}

async function deleteRedisKeys (prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL as string, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 })) {
      if ((keys as string[]).length > 0) await redis.del(...(keys as string[]))
    }
  } finally {
    redis.disconnect()
  }
}

/** `npm run cli -- create-user ...`, without npm: the command the README gives for the first admin (docs/configuration.md). */
function createAdmin (env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const { command, args } = program('cli', 'create-user',
      '--email', ADMIN.email, '--username', ADMIN.username, '--password', ADMIN.password, '--role', 'admin')
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.on('error', reject)
    child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`cli create-user exited ${code}:\n${output}`)))
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function counts (replies: Reply[]): Record<number, number> {
  const result: Record<number, number> = {}
  for (const r of replies) result[r.status] = (result[r.status] ?? 0) + 1
  return result
}

// ---------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'inkwell-mp-'))
const database = await createDatabase()
const redisPrefix = `inkwell-mp-${RUN}:`
const env: Record<string, string> = {
  NODE_ENV: 'production',
  DATABASE_URL: database.url,
  REDIS_URL: TEST_REDIS_URL,
  REDIS_KEY_PREFIX: redisPrefix,
  JWT_SECRET: `multiprocess-test-secret-${RUN}-0123456789abcdef`,
  UPLOADS_DIR: join(dir, 'uploads'), // shared by all processes (deploy/README.md)
  MAIL_OUTBOX_DIR: join(dir, 'outbox'),
  LOG_LEVEL: 'warn',
  AUTH_RATE_LIMIT: String(AUTH_RATE_LIMIT),
  LOGIN_FAILURE_LIMIT: String(LOGIN_FAILURE_LIMIT)
}

const running: { cluster?: Cluster, trusting?: InkwellProcess } = {}
t.teardown(async () => {
  await Promise.all([running.cluster?.stop(), running.trusting?.stop()])
  await database.drop()
  await deleteRedisKeys(redisPrefix)
  rmSync(dir, { recursive: true, force: true })
})

// Everything starts at once, as a deployment would: three processes, a fourth that trusts nginx
// (TRUST_PROXY=127.0.0.1) for the proxy test, and the CLI making the first admin. Migrations must
// run once whatever the order.
const [clusterStart, trustingStart, adminStart] = await Promise.allSettled([
  startCluster(3, env),
  freePort().then((port) => startProcess(port, { ...env, TRUST_PROXY: '127.0.0.1' })),
  createAdmin(env)
])
if (clusterStart.status === 'fulfilled') running.cluster = clusterStart.value
if (trustingStart.status === 'fulfilled') running.trusting = trustingStart.value
const failedStart = [clusterStart, trustingStart, adminStart].find((start) => start.status === 'rejected')
if (failedStart !== undefined) {
  await Promise.all([running.cluster?.stop(), running.trusting?.stop()])
  await database.drop()
  throw failedStart.reason
}
const mp = running.cluster as Cluster
const trusting = running.trusting as InkwellProcess
const request = mp.request

async function login (username: string, password = PASSWORD, from = CLIENT.journeys) {
  const res = await request('POST', '/auth/token', { form: { username, password }, from })
  if (res.status !== 200) throw new Error(`login of ${username} on ${res.base}: ${res.status} ${res.text}`)
  return { access: res.json.access_token as string, refresh: res.json.refresh_token as string }
}

t.test('three processes on one database and one Redis behave as one server', async (t) => {
  // Register on one, log in on another, use the token on a third.
  const alice = { email: `alice-${RUN}@example.com`, username: `alice-${RUN}` }
  const registered = await request('POST', '/auth/register', { json: { ...alice, password: PASSWORD } })
  t.equal(registered.status, 201, `register: ${registered.text}`)
  const aliceId = registered.json.id as number
  const tokens = await login(alice.username)
  const me = await request('GET', '/users/me', { token: tokens.access })
  t.equal(me.status, 200)
  t.equal(me.json.email, alice.email)
  for (const p of mp.processes) {
    t.equal((await requestAt(p.base, 'GET', '/users/me', { token: tokens.access })).status, 200, `the token works on ${p.base}`)
  }

  await t.test('posts and likes', async (t) => {
    const created = await request('POST', '/posts', { token: tokens.access, json: { title: 'Hello', content: 'from one process' } })
    t.equal(created.status, 201, created.text)
    const id = created.json.id as number
    t.equal((await request('PUT', `/posts/${id}/like`, { token: tokens.access })).status, 204)
    const seen = await request('GET', `/posts/${id}`, { token: tokens.access })
    t.match(seen.json, { id, like_count: 1, liked: true, author: { id: aliceId } })
    const list = await request('GET', '/posts')
    t.equal(list.status, 200)
    t.ok(list.json.items.some((p: { id: number }) => p.id === id), 'the list on another process has it')
    t.notOk('liked' in list.json.items[0], 'anonymous list has no liked')
    t.equal((await request('DELETE', `/posts/${id}/like`, { token: tokens.access })).status, 204)
    t.match((await request('GET', `/posts/${id}`, { token: tokens.access })).json, { like_count: 0, liked: false })
  })

  await t.test('one refresh token raced on all three processes: one winner, then the session is dead', async (t) => {
    const session = await login(alice.username)
    const race = await mp.toEach('POST', '/auth/token', { form: { grant_type: 'refresh_token', refresh_token: session.refresh } })
    t.same(counts(race), { 200: 1, 401: 2 }, race.map((r) => `${r.base} ${r.status}`).join(', '))
    const winner = race.find((r) => r.status === 200)
    if (winner === undefined) return
    // The losers presented a spent token: theft, so the session ends, the winner's pair included.
    const again = await request('POST', '/auth/token', { form: { grant_type: 'refresh_token', refresh_token: winner.json.refresh_token } })
    t.equal(again.status, 401, 'the winner\'s new refresh token is refused')
    for (const p of mp.processes) {
      t.equal((await requestAt(p.base, 'GET', '/users/me', { token: winner.json.access_token })).status, 401, `winner's access token dead on ${p.base}`)
      t.equal((await requestAt(p.base, 'GET', '/users/me', { token: session.access })).status, 401, `original access token dead on ${p.base}`)
    }
  })

  await t.test('a logout on one process ends the tokens on the others', async (t) => {
    const session = await login(alice.username)
    t.equal((await request('POST', '/auth/logout', { json: { refresh_token: session.refresh } })).status, 204)
    const [a, b] = await Promise.all([
      request('GET', '/users/me', { token: session.access }),
      request('GET', '/users/me', { token: session.access })
    ])
    t.equal(a?.status, 401)
    t.equal(b?.status, 401)
    t.equal(a?.headers.get('www-authenticate'), 'Bearer')
    t.equal((await request('POST', '/auth/token', { form: { grant_type: 'refresh_token', refresh_token: session.refresh } })).status, 401)
    t.equal((await request('GET', '/users/me', { token: tokens.access })).status, 200, 'another session lives on')
  })

  await t.test('login failures count across all processes', async (t) => {
    // One client (its own address), failures spread over the processes in turn.
    for (let i = 0; i < LOGIN_FAILURE_LIMIT; i++) {
      const res = await request('POST', '/auth/token', { form: { username: alice.username, password: 'not the password' }, from: CLIENT.throttle })
      t.equal(res.status, 401, `failure ${i + 1} on ${res.base}`)
    }
    // The next attempt, right password or not, is refused whichever process it reaches.
    const refused = await mp.toEach('POST', '/auth/token', { form: { username: alice.username, password: PASSWORD }, from: CLIENT.throttle })
    for (const r of refused) {
      t.equal(r.status, 429, `${r.base}: ${r.status}`)
      t.match(r.headers.get('retry-after'), /^[1-9]\d*$/, 'with Retry-After in seconds')
    }
    // Another client is not affected.
    t.equal((await request('POST', '/auth/token', { form: { username: alice.username, password: PASSWORD } })).status, 200)
  })

  await t.test('a burst of wrong passwords spread over every process: at most the limit is checked', async (t) => {
    const target = { email: `target-${RUN}@example.com`, username: `target-${RUN}` }
    t.equal((await request('POST', '/auth/register', { json: { ...target, password: PASSWORD } })).status, 201)
    const { access } = await login(target.username)
    // Under the /auth rate limit (30 a minute a client), so every refusal here is the failure limit's.
    const logins = await Promise.all(Array.from({ length: 27 }, (_, i) =>
      request('POST', '/auth/token', { form: { username: i % 2 === 0 ? target.username : target.email, password: `wrong guess ${i}` }, from: CLIENT.burst })))
    const checked = logins.filter((r) => r.status === 401).length
    t.ok(checked <= LOGIN_FAILURE_LIMIT, `27 logins at once over ${mp.processes.length} processes: ${checked} checked, at most ${LOGIN_FAILURE_LIMIT}`)
    t.equal(checked + logins.filter((r) => r.status === 429 && r.json.code === 'LOGIN_THROTTLED').length, 27, 'the rest: the failure limit\'s 429')

    const changes = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      request('PUT', '/users/me/password', { token: access, json: { current_password: `wrong guess ${i}`, new_password: 'what the thief wants' }, from: '127.0.0.11' })))
    const wrong = changes.filter((r) => r.status === 400).length
    t.ok(wrong <= LOGIN_FAILURE_LIMIT, `60 password changes at once with a stolen token: ${wrong} checked, at most ${LOGIN_FAILURE_LIMIT}`)
    t.equal(wrong + changes.filter((r) => r.status === 429).length, 60, 'the rest: 429')
  })

  await t.test('the /auth rate limit counts across all processes', async (t) => {
    // Logout with a token that is no token: cheap, 204, and under the /auth limit like the rest.
    const replies: Reply[] = []
    for (let i = 0; i < AUTH_RATE_LIMIT; i++) {
      replies.push(await request('POST', '/auth/logout', { json: { refresh_token: 'not-a-token' }, from: CLIENT.rateLimit }))
    }
    t.same(counts(replies), { 204: AUTH_RATE_LIMIT }, `${AUTH_RATE_LIMIT} requests spread over 3 processes pass`)
    const over = await mp.toEach('POST', '/auth/logout', { json: { refresh_token: 'not-a-token' }, from: CLIENT.rateLimit })
    for (const r of over) {
      t.equal(r.status, 429, `request ${AUTH_RATE_LIMIT + 1}+ on ${r.base}`)
      t.match(r.headers.get('retry-after'), /^[1-9]\d*$/)
    }
  })

  await t.test('admin changes are seen at once on every process', async (t) => {
    const admin = await login(ADMIN.username, ADMIN.password)
    const bob = { email: `bob-${RUN}@example.com`, username: `bob-${RUN}` }
    const registered = await request('POST', '/auth/register', { json: { ...bob, password: PASSWORD } })
    t.equal(registered.status, 201)
    const bobId = registered.json.id as number
    const old = await login(bob.username)

    const deactivated = await request('PATCH', `/admin/users/${bobId}`, { token: admin.access, json: { is_active: false } })
    t.equal(deactivated.status, 200, deactivated.text)
    t.equal(deactivated.json.is_active, false)
    // Deactivation ends the sessions (401), or, where it does not yet, the active flag refuses (403).
    for (const p of mp.processes) {
      const res = await requestAt(p.base, 'POST', '/posts', { token: old.access, json: { title: 't', content: 'c' } })
      t.ok(res.status === 401 || (res.status === 403 && res.json.message === 'Inactive account'),
        `old token on ${p.base}: ${res.status} ${res.json?.message}`)
    }
    const fresh = await login(bob.username)
    for (const p of mp.processes) {
      const me = await requestAt(p.base, 'GET', '/users/me', { token: fresh.access })
      t.equal(me.json?.is_active, false, `${p.base} sees is_active false`)
      const post = await requestAt(p.base, 'POST', '/posts', { token: fresh.access, json: { title: 't', content: 'c' } })
      t.equal(post.status, 403, `${p.base} refuses a write`)
      t.equal(post.json?.message, 'Inactive account')
    }

    t.equal((await request('PATCH', `/admin/users/${bobId}`, { token: admin.access, json: { is_active: true } })).status, 200)
    for (const p of mp.processes) {
      const post = await requestAt(p.base, 'POST', '/posts', { token: fresh.access, json: { title: 'back', content: 'again' } })
      t.equal(post.status, 201, `${p.base} takes writes again`)
    }
  })

  await t.test('an avatar uploaded through one process is served by the others', async (t) => {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer()
    const form = new FormData()
    form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'me.png')
    const uploaded = await request('PUT', '/users/me/avatar', { token: tokens.access, multipart: form })
    t.equal(uploaded.status, 200, uploaded.text)
    const url = uploaded.json?.avatar_url as string
    t.match(url, /^\/avatars\//)
    for (const p of mp.processes) {
      const res = await requestAt(p.base, 'GET', url)
      t.equal(res.status, 200, `${p.base} serves it`)
      t.equal(res.headers.get('content-type'), 'image/webp')
    }
  })

  await t.test('one email registered at once on every process: exactly one 201', async (t) => {
    const email = `twin-${RUN}@example.com`
    const attempts = Array.from({ length: 6 }, (_, i) =>
      request('POST', '/auth/register', { json: { email, username: `twin${i}-${RUN}`, password: PASSWORD }, from: CLIENT.registrations }))
    const replies = await Promise.all(attempts)
    t.same(counts(replies), { 201: 1, 409: 5 }, replies.map((r) => `${r.base} ${r.status}`).join(', '))
  })

  // Whatever failed above, nothing may have been a 500: every process's log is free of errors.
  for (const p of mp.processes) {
    const errors = p.stdout().split('\n').filter((line) => /"level":[56]\d/.test(line))
    t.same(errors, [], `no errors logged by ${p.base}`)
  }
})

t.test('nginx (deploy/nginx.conf) in front of the processes', async (t) => {
  const nginx = await startNginx(mp.ports)
  t.teardown(() => nginx.stop())
  const via = (method: string, path: string, options = {}) => requestAt(nginx.base, method, path, options)

  const health = await Promise.all(Array.from({ length: 6 }, () => via('GET', '/health')))
  t.same(health.map((r) => r.status), [200, 200, 200, 200, 200, 200])
  const admin = await via('POST', '/auth/token', { form: { username: ADMIN.username, password: ADMIN.password } })
  t.equal(admin.status, 200, admin.text)
  const token = admin.json.access_token as string
  const me = await via('GET', '/users/me', { token })
  t.equal(me.json?.username, ADMIN.username)
  // nginx passes the app's headers on untouched, only hop-by-hop ones go and its own Server comes.
  const direct = await requestAt(mp.next(), 'GET', '/users/me', { token })
  const names = (r: Reply) => [...r.headers.keys()].filter((n) => !['connection', 'keep-alive', 'server', 'date'].includes(n)).sort()
  t.same(names(me), names(direct), 'the same response headers as straight from a process')
  t.equal(me.headers.get('server'), 'nginx', 'nginx names no version')

  // Round robin: nginx's access log names the process that answered each request.
  const upstreams = new Set(nginx.accessLog().flatMap((line) => /upstream=(\S+)/.exec(line)?.[1]?.split(/,\s*/) ?? []))
  t.same([...upstreams].sort(), mp.ports.map((p) => `127.0.0.1:${p}`).sort(), 'every process answered some of them')

  await t.test('the client address reaches the app only with TRUST_PROXY', async (t) => {
    // An admin write records request.ip in the audit log. The request comes from 127.0.0.7 and
    // carries a forged X-Forwarded-For; nginx appends 127.0.0.7.
    const users = await via('GET', '/admin/users?limit=1', { token })
    const target = users.json?.items?.[0]?.id as number
    t.not(target, me.json.id, 'a user other than the admin')
    const auditedIp = async (base: string, role: string) => {
      const changed = await requestAt(base, 'PATCH', `/admin/users/${target}`, {
        token, json: { role }, from: CLIENT.viaNginx, headers: { 'x-forwarded-for': '203.0.113.9' }
      })
      t.equal(changed.status, 200, changed.text)
      const audit = await requestAt(base, 'GET', '/admin/audit?limit=1', { token })
      return audit.json?.items?.[0]?.ip as string | undefined
    }
    t.equal(await auditedIp(nginx.base, 'moderator'), '127.0.0.1', 'without TRUST_PROXY the app sees nginx')
    const trustedNginx = await startNginx([trusting.port])
    t.teardown(() => trustedNginx.stop())
    t.equal(await auditedIp(trustedNginx.base, 'user'), CLIENT.viaNginx, 'with TRUST_PROXY=127.0.0.1 it sees the client, not the forged address')
  })

  await t.test('a process stopping under load (a rolling restart): no request is lost', async (t) => {
    const [, , third] = mp.processes
    if (third === undefined) throw new Error('three processes expected')
    const seen: Record<string, number> = {}
    const failures: string[] = []
    let loading = true
    const load = async (i: number) => {
      while (loading) {
        const r = i % 2 === 0
          ? await via('GET', '/posts?limit=5')
          : await via('POST', '/posts', { token, json: { title: 'under load', content: `worker ${i}` } })
        const key = `${i % 2 === 0 ? 'GET' : 'POST'} ${r.status}`
        seen[key] = (seen[key] ?? 0) + 1
        if (r.status >= 300) failures.push(`${key} ${r.text}`)
      }
    }
    const workers = [0, 1, 2, 3].map(load)
    await sleep(300)
    const t0 = Date.now()
    await third.stop() // SIGTERM: the app drains and closes its connections
    t.comment(`stop took ${Date.now() - t0} ms`)
    await sleep(500)
    loading = false
    await Promise.all(workers)
    const details = { seen, failures, nginx: nginx.accessLog().filter((line) => !/" 20[014] /.test(line)) }
    t.ok(seen['GET 200'] !== undefined && Object.keys(seen).every((key) => !key.startsWith('GET ') || key === 'GET 200'),
      'every GET answered (nginx replays an idempotent request refused by the stopping process)', details)
    // A POST is never replayed by nginx: it must not reach a process that refuses or resets it. The
    // app drains first (Connection: close on every response, idle connections closed) and serves
    // whatever still arrives on an open connection while it closes (return503OnClosing: false).
    t.ok(seen['POST 201'] !== undefined && Object.keys(seen).every((key) => !key.startsWith('POST ') || key === 'POST 201'),
      'every POST answered', details)

    // It stays away: refused connections are retried on the others, POSTs included (nothing reached it).
    const replies = await Promise.all(Array.from({ length: 6 }, () => via('GET', '/health')))
    t.same(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200], 'GETs all answered')
    const post = await via('POST', '/posts', { token, json: { title: 'still', content: 'here' } })
    t.equal(post.status, 201, 'a POST too')
    // Either a refused connect, or (when the drain closed a kept-alive upstream connection just as nginx
    // reused it, and nginx replayed that GET elsewhere) a premature close that marks the process failed.
    const errors = nginx.errorLog()
    t.match(errors, new RegExp(`(failed|prematurely closed) .*127\\.0\\.0\\.1:${third.port}`), 'nginx saw the process go', { errors })

    // None left: nginx's own answer, in the contract's error shape.
    const t1 = Date.now()
    await mp.stop()
    t.comment(`stop all took ${Date.now() - t1} ms`)
    const down = await via('GET', '/health')
    t.equal(down.status, 503)
    t.same(down.json, { statusCode: 503, error: 'Service Unavailable', message: 'Service Unavailable' })
    t.equal(down.headers.get('retry-after'), '5')
  })
})
