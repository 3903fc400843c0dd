import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from './support/processes.js'
import { program, START_BOUND_MS } from './support/programs.js'
import { TEST_ENGINE } from './support/services.js'
import { parseExposition, valueOf } from './support/prometheus.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SECRET = 'server-test-secret-that-is-long-enough-0123456789'
const METRICS_TOKEN = 'server-test-metrics-token-0123456789'
/** For what follows the start: a log line, a request in flight, the exit after SIGTERM. */
const BOUND_MS = 20_000

type Child = ChildProcessByStdio<null, Readable, Readable>

interface Teardown { teardown: (fn: () => unknown) => void }


function tempDir (t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-server-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

interface Started {
  child: Child
  /** Everything the process wrote so far. */
  output: () => { stdout: string, stderr: string }
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Resolves with the first JSON log line on stdout that satisfies the test, or rejects after the bound. */
  waitForLog: (test: (entry: LogEntry) => boolean) => Promise<LogEntry>
}

type LogEntry = Record<string, unknown> & { msg?: string, req?: { url?: string } }

function logEntries (stdout: string): LogEntry[] {
  return stdout.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as LogEntry]
    } catch {
      return []
    }
  })
}

/** Stops the server's process group (which we created), whatever it started. */
function killGroup (child: Child, signal: NodeJS.Signals) {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

/** The server (support/programs.ts) with exactly this environment (plus PATH and HOME); killed at the end of the test at the latest. */
function startServer (t: Teardown, env: Record<string, string>): Started {
  const { command, args } = program('server')
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true // its own process group, so the teardown stops whatever it starts
  })
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ test: (entry: LogEntry) => boolean, resolve: (entry: LogEntry) => void }> = []
  const check = () => {
    if (waiters.length === 0) return
    const entries = logEntries(stdout)
    for (const w of [...waiters]) {
      const entry = entries.find(w.test)
      if (entry !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(entry)
      }
    }
  }
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); check() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  const hardStop = setTimeout(() => killGroup(child, 'SIGKILL'), START_BOUND_MS + 3 * BOUND_MS)
  void exited.then(() => clearTimeout(hardStop))
  t.teardown(async () => {
    clearTimeout(hardStop)
    killGroup(child, 'SIGKILL')
    await exited
  })
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    waitForLog: (test) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such log line within ${BOUND_MS} ms`)), BOUND_MS)
      waiters.push({ test, resolve: (entry) => { clearTimeout(timer); resolve(entry) } })
      check()
    })
  }
}

/** Settles as the promise does, or rejects once the bound has passed. */
function bounded<T> (promise: Promise<T>, what: string, bound = BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${bound} ms`)), bound)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Polls GET /health until it answers 200, for at most the start bound. */
async function waitForHealth (base: string, server: Started): Promise<Response> {
  const deadline = Date.now() + START_BOUND_MS
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`the server exited early: ${server.output().stderr}`)
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })
      if (res.status === 200) return res
      await res.arrayBuffer()
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`GET /health did not answer 200 within ${START_BOUND_MS} ms`)
}

t.test('the real server starts, migrates, serves, and drains in-flight requests on SIGTERM', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const server = startServer(t, {
    NODE_ENV: 'test',
    PORT: String(port),
    DATABASE_URL: join(dir, 'inkwell.db'),
    UPLOADS_DIR: join(dir, 'uploads'),
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'info',
    METRICS_TOKEN
  })

  const health = await waitForHealth(base, server)
  // The server logs its pid.
  const listening = await server.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('Server listening at'))
  const serverPid = listening.pid
  t.type(serverPid, 'number', 'the server logs its pid')
  t.same(await health.json(), { status: 'ok' }, 'GET /health: 200 {status: "ok"}')

  const credentials = { email: 'ivy@example.com', username: 'ivy', password: 'a perfectly fine passphrase' }
  const registered = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials)
  })
  t.equal(registered.status, 201, 'register works over real HTTP: the migrations were applied at start-up')
  const user = await registered.json() as { id: number, username: string }
  t.equal(user.username, 'ivy')

  const form = new URLSearchParams({ grant_type: 'password', username: 'ivy', password: credentials.password })
  const warmup = await fetch(`${base}/auth/token`, { method: 'POST', body: form })
  t.equal(warmup.status, 200, 'a form-encoded login works')
  const { access_token: access } = await warmup.json() as { access_token: string }
  const me = await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${access}` } })
  t.equal(me.status, 200, 'the token works over HTTP')
  await me.arrayBuffer()
  const meId = me.headers.get('x-request-id')
  t.match(meId, /^[0-9a-f-]{36}$/, 'the response carries its request id')

  // Secrets in a query string (a client that put a token where it does not belong) never reach the log.
  const leaky = await fetch(`${base}/users/me?access_token=${access}&password=QUERY-PASSWORD-1&Refresh%5FToken=QUERY-REFRESH-2&page=2`)
  t.equal(leaky.status, 401, 'a token in the query string counts as none')
  await leaky.arrayBuffer()

  // METRICS_TOKEN from the environment: the requests above, counted under their route patterns.
  const refused = await fetch(`${base}/metrics`)
  t.equal(refused.status, 401, 'GET /metrics without the token: 401')
  await refused.arrayBuffer()
  const scraped = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.equal(scraped.status, 200, 'GET /metrics with the token: 200')
  const metrics = parseExposition(await scraped.text())
  const served = (method: string, route: string, status: number) =>
    valueOf(metrics, 'http_request_duration_seconds_count', { method, route, status_code: String(status) })
  t.same([served('POST', '/auth/register', 201), served('POST', '/auth/token', 200), served('GET', '/users/me', 200), served('GET', '/users/me', 401)],
    [1, 1, 1, 1], 'each request counted once by route and status')
  t.same(valueOf(metrics, 'inkwell_logins_total', { outcome: 'success' }), 1, 'one successful login')

  // A login spends ~25 ms in argon2: SIGTERM as soon as the server has logged the request's arrival,
  // straight to the server's own process.
  const arrived = server.waitForLog((e) => e.msg === 'incoming request' && e.req?.url === '/auth/token?inflight')
  const inFlight = fetch(`${base}/auth/token?inflight`, { method: 'POST', body: form })
  await arrived
  process.kill(serverPid as number, 'SIGTERM')

  const res = await bounded(inFlight, 'the in-flight login')
  t.equal(res.status, 200, 'the in-flight request still completed with its normal status')
  const pair = await res.json() as { access_token?: string, token_type?: string }
  t.equal(pair.token_type, 'bearer', 'and its normal body')
  t.ok(pair.access_token, 'with an access token')

  const { code, signal } = await bounded(server.exited, 'the server exit')
  t.equal(signal, null, 'the process was not killed')
  t.equal(code, 0, 'the process exited with code 0')
  if (code !== 0) t.comment(`stderr: ${server.output().stderr}`)

  const entries = logEntries(server.output().stdout)
  const closingAt = entries.findIndex((e) => e.msg === 'server closing')
  t.ok(closingAt >= 0, 'it logged its shutdown')
  const completedAt = entries.findLastIndex((e) => e.msg === 'request completed')
  t.comment(closingAt < completedAt
    ? 'SIGTERM was handled while the login was in flight'
    : 'the login had completed before SIGTERM was handled (the drain was not exercised this time)')

  await t.rejects(fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) }), 'nothing listens any more')

  // The whole log of this run, as an operator would collect it: structured, and free of secrets.
  const log = server.output().stdout
  t.ok(entries.length > 5 && entries.every((e) => typeof e.msg === 'string'), 'the log is JSON lines')
  t.ok(entries.filter((e) => e.msg === 'incoming request').every((e) => typeof e.reqId === 'string'), 'every request has an id')
  const completed = entries.filter((e) => e.msg === 'request completed').map((e) => e.reqId)
  t.equal(new Set(completed).size, completed.length, 'a different id for each request')
  const ofMe = entries.filter((e) => e.reqId === meId)
  t.same(ofMe.map((e) => [e.msg, e.req?.url ?? (e as { res?: { statusCode?: number } }).res?.statusCode]),
    [['incoming request', '/users/me'], ['request completed', 200]], 'the x-request-id of a response is the reqId of its log lines')
  t.ok(log.includes('page=2'), 'an ordinary query parameter is logged as sent')
  t.ok(log.includes('access_token=[redacted]'), 'a sensitive one is logged as [redacted]')
  for (const [what, secret] of [['a query password', 'QUERY-PASSWORD-1'], ['a query refresh token', 'QUERY-REFRESH-2'],
    ['the password', credentials.password], ['an access token', access],
    ['the last access token', pair.access_token ?? ''], ['a password hash', '$argon2'], ['a bearer header', 'Bearer ']] as const) {
    t.notOk(secret !== '' && log.includes(secret), `no ${what} in the log`)
  }
})

t.test('invalid configuration stops start-up with a message naming the variable', async (t) => {
  const dir = tempDir(t)
  const common = { DATABASE_URL: join(dir, 'inkwell.db'), UPLOADS_DIR: join(dir, 'uploads'), LOG_LEVEL: 'info' }
  const badPort = startServer(t, { ...common, NODE_ENV: 'test', JWT_SECRET: SECRET, PORT: 'abc' })
  const noSecret = startServer(t, { ...common, NODE_ENV: 'production', PORT: String(await freePort()) })
  const [port, secret] = await Promise.all([
    bounded(badPort.exited, 'PORT=abc', START_BOUND_MS),
    bounded(noSecret.exited, 'production without JWT_SECRET', START_BOUND_MS)
  ])

  t.not(port.code, 0, 'PORT=abc: non-zero exit')
  t.equal(port.signal, null, 'PORT=abc: exited by itself')
  t.match(badPort.output().stderr, /PORT/, 'PORT=abc: stderr names PORT')
  t.notMatch(badPort.output().stderr, /\n\s+at /, 'PORT=abc: no stack trace')

  t.not(secret.code, 0, 'production without JWT_SECRET: non-zero exit')
  t.equal(secret.signal, null, 'production without JWT_SECRET: exited by itself')
  t.match(noSecret.output().stderr, /JWT_SECRET/, 'production without JWT_SECRET: stderr names JWT_SECRET')
  t.notMatch(noSecret.output().stderr, /\n\s+at /, 'production without JWT_SECRET: no stack trace')
})

t.test('a database or Redis that cannot be used stops start-up with one line naming DATABASE_URL or REDIS_URL', async (t) => {
  const dir = tempDir(t)
  const common = { NODE_ENV: 'test', JWT_SECRET: SECRET, UPLOADS_DIR: join(dir, 'uploads'), LOG_LEVEL: 'info' }
  const [closedPort, otherClosedPort] = [await freePort(), await freePort()]
  const cases: Array<{ name: string, env: Record<string, string>, variable: string, says: RegExp }> = [
    { name: 'PostgreSQL unreachable', env: { DATABASE_URL: `postgres://inkwell:secret@127.0.0.1:${closedPort}/inkwell` }, variable: 'DATABASE_URL', says: /cannot connect to PostgreSQL at postgres:\/\/inkwell:\*\*\*@127\.0\.0\.1:\d+\/inkwell: .*ECONNREFUSED/ },
    { name: 'Redis unreachable', env: { DATABASE_URL: join(dir, 'inkwell.db'), REDIS_URL: `redis://127.0.0.1:${otherClosedPort}` }, variable: 'REDIS_URL', says: /cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+.*ECONNREFUSED/ }
  ]
  const base = process.env.TEST_DATABASE_URL
  if (TEST_ENGINE === 'postgres' && base !== undefined) {
    const missing = new URL(base)
    missing.pathname = `/inkwell_missing_${process.pid}`
    const stranger = new URL(base)
    stranger.username = `nobody_${process.pid}`
    cases.push(
      { name: 'a database that does not exist', env: { DATABASE_URL: missing.toString() }, variable: 'DATABASE_URL', says: /database "inkwell_missing_\d+" does not exist/ },
      { name: 'a role that does not exist', env: { DATABASE_URL: stranger.toString() }, variable: 'DATABASE_URL', says: /role "nobody_\d+" does not exist/ })
  }
  const started = cases.map((c) => ({ ...c, server: startServer(t, { ...common, PORT: String(closedPort), ...c.env }) }))
  for (const { name, variable, says, server } of started) {
    const { code, signal } = await bounded(server.exited, name, START_BOUND_MS)
    const { stderr } = server.output()
    t.equal(code, 1, `${name}: exit code 1`)
    t.equal(signal, null, `${name}: exited by itself`)
    t.equal(stderr.trim().split('\n').length, 1, `${name}: one line on stderr`, { stderr })
    t.match(stderr, new RegExp(`^${variable}: `), `${name}: the line starts with ${variable}`)
    t.match(stderr, says, `${name}: and says what is wrong`)
  }
})
