// Real Inkwell server processes (and nginx in front of them) for the tests in test/services.
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { program, START_BOUND_MS } from './programs.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const STOP_TIMEOUT_MS = 12_000 // the server's own shutdown bound is 10 s

type Child = ChildProcessByStdio<null, Readable, Readable>

/** A port nobody listens on right now: the OS picks one, and it is released before the server takes it. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')))
    })
  })
}

/** Distinct free ports (the OS could hand the same released port out twice in a row). */
export async function freePorts (n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// Whatever happens to the test (a throw at the top level, a timeout), no server or nginx outlives it.
const live = new Set<{ kill: (signal: NodeJS.Signals) => unknown }>()
process.once('exit', () => { for (const child of live) child.kill('SIGKILL') })
function track (child: Child): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

export interface Reply {
  status: number
  headers: Headers
  /** Parsed JSON when the response is JSON, else undefined. */
  json: any // eslint-disable-line @typescript-eslint/no-explicit-any -- response bodies are checked field by field
  text: string
  /** The process (or proxy) that answered. */
  base: string
}

export interface RequestOptions {
  /** Sent as JSON. */
  json?: unknown
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>
  /** Sent as multipart/form-data. */
  multipart?: FormData
  headers?: Record<string, string>
  /** Bearer token for the Authorization header. */
  token?: string
  /**
   * Local address to connect from (any of 127.0.0.0/8 on Linux), so one test can act as several
   * clients: the app tells clients apart by address. Uses node:http, as fetch cannot choose it.
   */
  from?: string
}

/** One HTTP request to `base` (e.g. http://127.0.0.1:3001). */
export async function requestAt (base: string, method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let body: string | Uint8Array | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(options.form).toString()
  } else if (options.multipart !== undefined) {
    // Let undici write the multipart framing and boundary, then send those bytes.
    const encoded = new Response(options.multipart)
    headers['content-type'] = encoded.headers.get('content-type') ?? ''
    body = new Uint8Array(await encoded.arrayBuffer())
  }

  if (options.from === undefined) {
    const res = await fetch(base + path, { method, headers, ...(body !== undefined && { body }) })
    const text = await res.text()
    return { status: res.status, headers: res.headers, json: parseJson(res.headers.get('content-type'), text), text, base }
  }

  const url = new URL(base + path)
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method,
      headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      localAddress: options.from,
      agent: false
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const responseHeaders = new Headers()
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value)
        }
        resolve({ status: res.statusCode ?? 0, headers: responseHeaders, json: parseJson(res.headers['content-type'], text), text, base })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

function parseJson (contentType: string | null | undefined, text: string): unknown {
  if (contentType?.includes('json') !== true || text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

export interface InkwellProcess {
  port: number
  base: string
  pid: number
  /** Everything the process wrote so far. */
  stdout: () => string
  stderr: () => string
  /** Resolves once the process has ended. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** SIGTERM (or the given signal), then SIGKILL after 12 s; resolves once it has exited. */
  stop: (signal?: NodeJS.Signals) => Promise<void>
}

/**
 * The server (programs.ts) from the repository root, with PORT and exactly `env` (plus PATH
 * and HOME); resolves once GET /health answers 200, rejects with the child's output otherwise.
 */
export async function startProcess (port: number, env: Record<string, string>, timeoutMs = START_BOUND_MS): Promise<InkwellProcess> {
  const { command, args } = program('server')
  const child: Child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  track(child)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  let ended = false
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { ended = true; resolve({ code, signal }) })
  })
  const base = `http://127.0.0.1:${port}`
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (ended) return
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
  const started = { port, base, pid: child.pid ?? -1, stdout: () => stdout, stderr: () => stderr, exited, stop }

  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  while (Date.now() < deadline) {
    if (ended) {
      const { code, signal } = await exited
      throw new Error(`Inkwell on port ${port} exited (${signal ?? `code ${code}`}) before GET /health answered 200.\nstderr:\n${stderr}\nstdout:\n${stdout.slice(-4000)}`)
    }
    try {
      const res = await fetch(base + '/health', { signal: AbortSignal.timeout(2_000) })
      if (res.status === 200) return started
      last = `${res.status} ${await res.text()}`
    } catch (err) {
      last = String((err as Error).cause ?? err)
    }
    await sleep(100)
  }
  await stop('SIGKILL')
  throw new Error(`Inkwell on port ${port} did not answer GET /health with 200 within ${timeoutMs} ms (last: ${last}).\nstderr:\n${stderr}\nstdout:\n${stdout.slice(-4000)}`)
}

export interface Cluster {
  processes: InkwellProcess[]
  ports: number[]
  /** The next process's base URL, round robin. */
  next: () => string
  /** A request to the next process, round robin. */
  request: (method: string, path: string, options?: RequestOptions) => Promise<Reply>
  /** The same request sent at once to every process; the replies in process order. */
  toEach: (method: string, path: string, options?: RequestOptions) => Promise<Reply[]>
  /** Stops every process still running. */
  stop: () => Promise<void>
}

/** N Inkwell processes sharing `env`, started at once (as a deployment would); each on a free port. */
export async function startCluster (n: number, env: Record<string, string>): Promise<Cluster> {
  const ports = await freePorts(n)
  const settled = await Promise.allSettled(ports.map((port) => startProcess(port, env)))
  const processes = settled.flatMap((s) => s.status === 'fulfilled' ? [s.value] : [])
  const failed = settled.flatMap((s) => s.status === 'rejected' ? [s.reason as Error] : [])
  if (failed.length > 0) {
    await Promise.all(processes.map((p) => p.stop()))
    throw failed[0]
  }
  let turn = 0
  const next = () => {
    const base = processes[turn % processes.length]?.base
    turn++
    if (base === undefined) throw new Error('no processes')
    return base
  }
  return {
    processes,
    ports,
    next,
    request: (method, path, options) => requestAt(next(), method, path, options),
    toEach: (method, path, options) => Promise.all(processes.map((p) => requestAt(p.base, method, path, options))),
    stop: async () => { await Promise.all(processes.map((p) => p.stop())) }
  }
}

export interface Nginx {
  port: number
  base: string
  /** The rendered configuration, for error messages. */
  config: string
  /** Lines of the access log written so far (format `inkwell` of deploy/nginx.conf). */
  accessLog: () => string[]
  errorLog: () => string
  stop: () => Promise<void>
}

/**
 * deploy/nginx.conf with `listen` on `port`, the upstream servers on `upstreamPorts`, and pid, logs
 * and temporary files under `dir`; `daemon off` so it runs as a child of the test.
 * Fails if a line it must rewrite is missing, so the test cannot quietly run a different configuration.
 */
export function renderNginxConfig (source: string, port: number, upstreamPorts: number[], dir: string): string {
  const replaceOne = (text: string, pattern: RegExp, replacement: string) => {
    const matches = text.match(new RegExp(pattern.source, 'gm'))
    if (matches?.length !== 1) throw new Error(`deploy/nginx.conf: expected exactly one line matching ${pattern}, found ${matches?.length ?? 0}`)
    return text.replace(new RegExp(pattern.source, 'm'), replacement)
  }
  let text = source
  text = replaceOne(text, /^\s*pid\s+[^;]+;.*$/, `pid ${join(dir, 'nginx.pid')};`)
  text = replaceOne(text, /^\s*error_log\s+[^;]+;.*$/, `error_log ${join(dir, 'error.log')} info;`)
  text = replaceOne(text, /^(\s*)access_log\s+\S+\s+(\w+);.*$/, `$1access_log ${join(dir, 'access.log')} $2;`)
  text = replaceOne(text, /^(\s*)listen\s+[^;]+;.*$/, `$1listen 127.0.0.1:${port};`)

  const servers = /^(\s*)server\s+127\.0\.0\.1:\d+([^;]*);.*\n/gm
  const first = servers.exec(text)
  if (first === null) throw new Error('deploy/nginx.conf: no "server 127.0.0.1:PORT" line in the upstream')
  const [, indent = '', params = ''] = first
  const rendered = upstreamPorts.map((p) => `${indent}server 127.0.0.1:${p}${params};\n`).join('')
  let placed = false
  text = text.replace(servers, () => {
    if (placed) return ''
    placed = true
    return rendered
  })

  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((kind) => `    ${kind}_temp_path ${join(dir, `${kind}_temp`)};`).join('\n')
  text = replaceOne(text, /^http\s*\{\s*$/, `http {\n${temp}`)
  return `daemon off;\n${text}`
}

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']

export function nginxBinary (): string {
  if (process.env.NGINX_BIN !== undefined) return process.env.NGINX_BIN
  const found = NGINX_CANDIDATES.find((path) => existsSync(path))
  if (found === undefined) {
    throw new Error('nginx is not installed (looked for ' + NGINX_CANDIDATES.join(', ') + '; set NGINX_BIN): ' +
      'apt-get install -y --no-install-recommends nginx')
  }
  return found
}

/** nginx, configured by deploy/nginx.conf, in front of the given ports; resolves once it answers. */
export async function startNginx (upstreamPorts: number[], timeoutMs = 10_000): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-nginx-'))
  // nginx's workers drop to an unprivileged user when the test runs as root: let them reach the temp files.
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'logs'))
  const port = await freePort()
  const config = renderNginxConfig(readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8'), port, upstreamPorts, dir)
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, config)

  const child: Child = spawn(nginxBinary(), ['-p', dir, '-c', file, '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  track(child)
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  let ended = false
  const exited = new Promise<void>((resolve) => child.once('exit', () => { ended = true; resolve() }))
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name), 'utf8')
    } catch {
      return ''
    }
  }
  const stop = async () => {
    if (!ended) {
      child.kill('SIGQUIT') // graceful: finish the requests in flight
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const nginx: Nginx = {
    port,
    base: `http://127.0.0.1:${port}`,
    config,
    accessLog: () => read('access.log').split('\n').filter((line) => line !== ''),
    errorLog: () => read('error.log'),
    stop
  }

  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (ended) {
      const message = `nginx exited at start-up:\n${output}\n${read('error.log')}`
      await stop()
      throw new Error(message)
    }
    try {
      const res = await fetch(nginx.base + '/health', { signal: AbortSignal.timeout(2_000) })
      if (res.status === 200) return nginx
    } catch {
      // not listening yet
    }
    await sleep(50)
  }
  const message = `nginx did not answer GET /health with 200 within ${timeoutMs} ms:\n${output}\n${read('error.log')}`
  await stop()
  throw new Error(message)
}
