import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { DRAIN_MS } from '../../plugins/graceful.js'
import { PASSWORD, TEST_SECRET } from '../helper.js'
import { childEnv, program, START_BOUND_MS } from '../support/programs.js'
import { rawRequest } from './raw-http.js'

// The real server, as `npm start` runs it, in a child process on a SQLite file: killed without warning
// mid-load it must not lose an acknowledged write nor corrupt the file; stopped politely, it must
// finish what it started.

const ROOT = resolve(import.meta.dirname, '..', '..')

interface Server {
  child: ChildProcess
  port: number
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  output: () => string
}

function freePort (): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolvePort(port))
    })
  })
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms))

async function start (dir: string): Promise<Server> {
  const port = await freePort()
  // Its own process group, so the kill reaches whatever it starts; a kill in teardown whatever happens.
  const { command, args } = program('server')
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...childEnv(),
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: join(dir, 'inkwell.db'),
      UPLOADS_DIR: join(dir, 'uploads'),
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'warn',
      AUTH_RATE_LIMIT: '100000',
      LOGIN_FAILURE_LIMIT: '1000'
    }
  })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }))
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
  })

  const deadline = Date.now() + START_BOUND_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited at start-up: ${output}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1_000) })).ok) {
        return { child, port, exited, output: () => output }
      }
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`server not healthy within ${START_BOUND_MS} ms: ${output}`)
}

function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error(`${what}: not within ${ms} ms`) })])
}

function client (port: number) {
  const base = `http://127.0.0.1:${port}`
  return async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(base + path, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token !== undefined && { authorization: `Bearer ${token}` }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5_000)
    })
    const text = await res.text()
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
  }
}

async function registerAndLogin (call: ReturnType<typeof client>, name: string) {
  const reg = await call('POST', '/auth/register', { email: `${name}@example.com`, username: name, password: PASSWORD })
  if (reg.status !== 201) throw new Error(`register ${name}: ${reg.status}`)
  const tok = await call('POST', '/auth/token', { username: name, password: PASSWORD })
  return { id: reg.json.id as number, token: tok.json.access_token as string }
}

// Each start costs a second or more: the server restarted after the crash is the
// one the SIGTERM test stops. Children are killed in the file's teardown whatever happens.
const dir = mkdtempSync(join(tmpdir(), 'inkwell-crash-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let restarted: Server | undefined

t.test('SIGKILL mid-load loses no acknowledged write and leaves an intact database', async (t) => {
  const first = await start(dir)
  const call = client(first.port)

  const writers = await Promise.all(Array.from({ length: 4 }, (_, i) => registerAndLogin(call, `writer_${i}`)))
  const acked = {
    users: [] as Array<{ id: number, username: string }>,
    posts: [] as Array<{ id: number, title: string }>,
    likes: [] as Array<{ userId: number, postId: number }>
  }
  let killed = false
  let failedBeforeKill = 0

  /** One client: writes until the server dies or its budget runs out, recording what was acknowledged. */
  async function worker (w: number) {
    for (let i = 0; i < 400 && !killed; i++) {
      const writer = writers[(w + i) % writers.length]!
      try {
        if (i % 10 === 3) {
          const username = `crash_${w}_${i}`
          const res = await call('POST', '/auth/register', { email: `${username}@example.com`, username, password: PASSWORD })
          if (res.status === 201) acked.users.push({ id: res.json.id, username })
          else if (!killed) failedBeforeKill++
        } else if (i % 2 === 0 || acked.posts.length === 0) {
          const title = `post ${w}.${i}`
          const res = await call('POST', '/posts', { title, content: `written by worker ${w}` }, writer.token)
          if (res.status === 201) acked.posts.push({ id: res.json.id, title })
          else if (!killed) failedBeforeKill++
        } else {
          const post = acked.posts[(i * 7 + w) % acked.posts.length]!
          const res = await call('PUT', `/posts/${post.id}/like`, undefined, writer.token)
          if (res.status === 204) acked.likes.push({ userId: writer.id, postId: post.id })
          else if (!killed) failedBeforeKill++
        }
      } catch {
        if (!killed) failedBeforeKill++
      }
    }
  }

  const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)))
  const deadline = Date.now() + 10_000
  while (acked.posts.length + acked.likes.length < 120 && Date.now() < deadline) await sleep(20)
  process.kill(-first.child.pid!, 'SIGKILL')
  killed = true
  const { signal } = await within(first.exited, 5_000, 'exit after SIGKILL')
  await within(load, 10_000, 'clients stop')
  t.equal(signal, 'SIGKILL', 'the server was killed mid-load')
  t.equal(failedBeforeKill, 0, 'no write failed before the kill')
  t.ok(acked.posts.length + acked.likes.length >= 120, `acknowledged before the kill: ${acked.users.length} users, ${acked.posts.length} posts, ${acked.likes.length} likes`)

  const second = await start(dir)
  restarted = second
  const again = client(second.port)
  const missing: string[] = []
  for (const user of acked.users) {
    const res = await again('GET', `/users/${user.id}`)
    if (res.status !== 200 || res.json.username !== user.username) missing.push(`user ${user.id}`)
  }
  for (const post of acked.posts) {
    const res = await again('GET', `/posts/${post.id}`)
    if (res.status !== 200 || res.json.title !== post.title) missing.push(`post ${post.id}`)
  }
  const db = new Database(join(dir, 'inkwell.db'), { readonly: true })
  t.teardown(() => db.close())
  const liked = db.prepare('SELECT 1 FROM likes WHERE user_id = ? AND post_id = ?')
  for (const like of acked.likes) {
    if (liked.get(like.userId, like.postId) === undefined) missing.push(`like ${like.userId}→${like.postId}`)
  }
  t.same(missing, [], 'after a restart every acknowledged user, post and like is there')
  t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], 'PRAGMA integrity_check: ok')
  t.same(db.pragma('foreign_key_check'), [], 'no dangling reference')

  const counts = db.prepare('SELECT id, (SELECT count(*) FROM likes WHERE post_id = posts.id) AS n FROM posts').all() as Array<{ id: number, n: number }>
  const wrong = []
  for (const { id, n } of counts) {
    const res = await again('GET', `/posts/${id}`)
    if (res.json.like_count !== n) wrong.push(id)
  }
  t.same(wrong, [], 'every like_count agrees with the likes that survived')

  const writer = await again('POST', '/auth/token', { username: 'writer_0', password: PASSWORD })
  t.equal(writer.status, 200, 'the restarted server logs a user in')
  t.equal((await again('POST', '/posts', { title: 'after', content: 'the crash' }, writer.json.access_token)).status, 201, 'and takes writes')
})

t.test('SIGTERM: requests in flight complete, the server drains then refuses new connections, the process exits 0', async (t) => {
  const server = restarted ?? await start(dir)
  const call = client(server.port)
  const author = await registerAndLogin(call, 'author')
  const post = await call('POST', '/posts', { title: 'to like', content: 'x' }, author.token)

  // Each request is sent but for the last byte of its body: unmistakably in flight when the signal lands.
  // The like's client keeps its connection open afterwards, as a proxy's pool would: it must not hold the exit up.
  const inFlight = (method: string, path: string, body: unknown, token?: string, keepOpen = false) => {
    const payload = JSON.stringify(body)
    const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `${token === undefined ? '' : `Authorization: Bearer ${token}\r\n`}Content-Length: ${Buffer.byteLength(payload)}\r\n\r\n`
    return rawRequest(server.port, [head + payload.slice(0, -1), 700, payload.slice(-1)], 8_000, keepOpen)
  }
  const pending = [
    ...Array.from({ length: 4 }, (_, i) => inFlight('POST', '/auth/register', { email: `late${i}@example.com`, username: `late_${i}`, password: PASSWORD })),
    ...Array.from({ length: 4 }, (_, i) => inFlight('POST', '/posts', { title: `late post ${i}`, content: 'finished after SIGTERM' }, author.token)),
    inFlight('PUT', `/posts/${post.json.id}/like`, {}, author.token, true)
  ]
  await sleep(300)
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  await sleep(200)
  // The drain (DRAIN_MS): a proxy still sending here is served, and told to close, while it moves away.
  const during = await fetch(`http://127.0.0.1:${server.port}/health`, { signal: AbortSignal.timeout(1_000) })
  t.equal(during.status, 200, 'during the drain, a new request is still served')
  t.equal(during.headers.get('connection'), 'close', 'with Connection: close')
  await during.arrayBuffer()
  await sleep(Math.max(0, signalled + DRAIN_MS + 400 - Date.now()))
  let refused = false
  try {
    await fetch(`http://127.0.0.1:${server.port}/health`, { signal: AbortSignal.timeout(1_000) })
  } catch {
    refused = true
  }
  t.ok(refused, 'after the drain, a new connection is refused')

  const answers = await within(Promise.all(pending), 10_000, 'in-flight answers')
  t.teardown(() => answers.forEach((a) => a.socket.destroy()))
  t.same(answers.map((a) => a.status), [201, 201, 201, 201, 201, 201, 201, 201, 204],
    'every request in flight was answered: four registrations, four posts and a like')
  t.ok(answers.every((a) => /\r\nconnection: close\r\n/i.test(a.text)), 'each with Connection: close: the server is going away')
  const { code, signal } = await within(server.exited, 12_000, 'exit after SIGTERM')
  t.same({ code, signal }, { code: 0, signal: null }, 'the process exits 0 on its own')
  t.ok(Date.now() - signalled < 5_000, `well within the 10 s grace period (${Date.now() - signalled} ms)`)
  t.notMatch(server.output(), /"level":(50|60)|killed by timeout/, 'no error was logged while closing')

  const db = new Database(join(dir, 'inkwell.db'), { readonly: true })
  t.teardown(() => db.close())
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n
  t.equal(count("SELECT count(*) AS n FROM users WHERE username LIKE 'late_%'"), 4, 'the four registrations are stored')
  t.equal(count("SELECT count(*) AS n FROM posts WHERE title LIKE 'late post %'"), 4, 'the four posts are stored')
  t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], 'PRAGMA integrity_check: ok')
})
