// Load generation and measurement helpers for the benchmark runner.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

export interface LoadResult {
  /** 2xx responses a second. */
  rps: number
  /** Latency percentiles of the 2xx responses, milliseconds. */
  p50: number
  p99: number
  ok: number
  /** Responses that were not 2xx, and socket errors or timeouts: each should be 0. */
  non2xx: number
  errors: number
  seconds: number
}

export interface LoadRequest {
  method?: 'GET' | 'POST' | 'PATCH'
  path: string
  headers?: Record<string, string>
  body?: string
}

export function percentile (sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] as number
}

/** Growable list of latencies, sorted once at the end. */
class Samples {
  private data = new Float64Array(1 << 16)
  length = 0
  push (value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = value
  }

  sorted (): Float64Array {
    return this.data.slice(0, this.length).sort()
  }
}

/**
 * Drives `url` with autocannon: `connections` keep-alive connections, each cycling through `requests`,
 * for `seconds`. Latencies are taken per response (autocannon's own histogram rounds to whole ms).
 */
export async function load (url: string, requests: LoadRequest[], options: { connections: number, seconds: number }): Promise<LoadResult> {
  return await loadMany([url], requests, options)
}

/**
 * `load` against several servers at once (one autocannon instance each, the connections split
 * between them): req/s summed, percentiles over every response of every instance.
 */
export async function loadMany (urls: string[], requests: LoadRequest[], options: { connections: number, seconds: number }): Promise<LoadResult> {
  const samples = new Samples()
  let non2xx = 0
  const results = await Promise.all(urls.map(async (url, i) => {
    const instance = autocannon({
      url,
      connections: Math.floor(options.connections / urls.length) + (i < options.connections % urls.length ? 1 : 0),
      duration: options.seconds,
      requests: requests.map((r) => ({
        method: r.method ?? 'GET',
        path: r.path,
        headers: r.headers ?? {},
        ...(r.body !== undefined && { body: r.body })
      }))
    }, () => {})
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(responseTime)
      else non2xx++
    })
    return await new Promise<autocannon.Result>((resolve) => instance.on('done', resolve))
  }))
  const sorted = samples.sorted()
  const duration = Math.max(...results.map((r) => r.duration))
  return {
    rps: sorted.length / duration,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    ok: sorted.length,
    non2xx,
    errors: results.reduce((n, r) => n + r.errors + r.timeouts, 0),
    seconds: duration
  }
}

/**
 * A latency probe: `workers` clients, each sending one request at a time and at most one every
 * `intervalMs`, timing each request to its last byte. Not corrected for coordinated omission:
 * a slow response delays that worker's next request, it does not invent samples.
 */
export async function probe (url: string, req: LoadRequest, options: { workers: number, intervalMs: number, seconds: number, maxRequests?: number }): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.workers })
  const target = new URL(url)
  const samples = new Samples()
  let non2xx = 0
  let errors = 0
  let sent = 0
  const started = performance.now()
  const deadline = started + options.seconds * 1000
  const max = options.maxRequests ?? Infinity

  const once = () => new Promise<number>((resolve, reject) => {
    const r = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method ?? 'GET',
      path: req.path,
      headers: { ...req.headers, ...(req.body !== undefined && { 'content-length': Buffer.byteLength(req.body) }) },
      agent
    }, (res) => {
      res.on('data', () => {})
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    r.on('error', reject)
    r.setTimeout(10_000, () => r.destroy(new Error('probe timeout')))
    r.end(req.body)
  })

  async function worker (): Promise<void> {
    while (performance.now() < deadline && sent < max) {
      sent++
      const t0 = performance.now()
      try {
        const status = await once()
        const ms = performance.now() - t0
        if (status >= 200 && status < 300) samples.push(ms)
        else non2xx++
      } catch {
        errors++
      }
      const wait = options.intervalMs - (performance.now() - t0)
      if (wait > 0) await sleep(wait)
    }
  }

  await Promise.all(Array.from({ length: options.workers }, worker))
  agent.destroy()
  const seconds = (performance.now() - started) / 1000
  const sorted = samples.sorted()
  return { rps: sorted.length / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), ok: sorted.length, non2xx, errors, seconds }
}

/** Resident memory of a process, MiB (Linux /proc; NaN elsewhere). */
export function rssMiB (pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
    return kb === undefined ? NaN : Number(kb) / 1024
  } catch {
    return NaN
  }
}

/**
 * CPU time a process (all its threads) has used so far, seconds: user + system from /proc/<pid>/stat.
 * CPU per request is steadier than req/s on a machine shared with other work. NaN off Linux.
 */
export function cpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return NaN
  }
}

/**
 * CPU time every `postgres` process has used so far, seconds: the live ones (postmaster, backends,
 * background workers) and the children the postmaster has reaped. Across a scenario, the database
 * server's CPU, when it runs on this machine (and no other PostgreSQL work runs meanwhile). NaN off Linux.
 */
export function postgresCpuSeconds (): number {
  if (process.platform !== 'linux') return NaN
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime, stime, and cutime, cstime (reaped children: backends of connections that closed).
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS
    } catch { /* the process ended meanwhile */ }
  }
  return total
}

const CLOCK_TICKS = (() => {
  if (process.platform !== 'linux') return 100
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(out.stdout?.trim())
  return Number.isInteger(n) && n > 0 ? n : 100
})()

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export const hasTaskset = (): boolean => process.platform === 'linux' && spawnSync('taskset', ['-V']).status === 0

/** Pins this process (every thread of it) to one core; false when that is not possible. */
export function pinSelf (core: number): boolean {
  if (!hasTaskset()) return false
  return spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' }).status === 0
}

export interface Server {
  name: string
  url: string
  pid: number
  stop: () => Promise<void>
}

const started = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of started) if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
})

/**
 * Starts `node <args>` as a child process, pinned to `core` with taskset when there is one, and
 * waits until GET /health answers 200 (at most 30 s).
 */
export async function startServer (name: string, args: string[], env: Record<string, string>, core: number | undefined): Promise<Server> {
  const port = await freePort()
  const [command, commandArgs] = core !== undefined
    ? ['taskset', ['-c', String(core), process.execPath, ...args]]
    : [process.execPath, args]
  const child = spawn(command, commandArgs, {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'inherit', 'inherit']
  })
  started.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} during start-up`)
    try {
      const res = await fetch(`${url}/health`)
      if (res.status === 200) break
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} did not answer /health within 30 s`)
    }
    await sleep(100)
  }
  return {
    name,
    url,
    pid: child.pid as number,
    async stop () {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
      started.delete(child)
    }
  }
}

export interface UploadStormResult {
  /** Answers by status (`error`: no answer), uploads stored a second, the image's size, the peak RSS. */
  statuses: Record<string, number>
  storedPerSecond: number
  imageMiB: number
  peakRssMiB: number
}

/**
 * Avatar uploads kept in flight by another process (bench/upload-storm.ts), so that building and
 * sending 5 MB bodies does not delay this process's probe: `tokens[i % tokens.length]` for uploader i.
 * The server's resident memory is sampled every 100 ms meanwhile.
 */
export function uploadStorm (server: Server, tokens: string[], options: { uploaders: number, seconds: number }): Promise<UploadStormResult> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'upload-storm.ts')
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, STORM: JSON.stringify({ url: server.url, tokens, ...options }) }
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  let peakRssMiB = 0
  const sampler = setInterval(() => { peakRssMiB = Math.max(peakRssMiB, rssMiB(server.pid)) }, 100)
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      clearInterval(sampler)
      if (code !== 0) return reject(new Error(`upload storm exited with ${code}: ${out}`))
      resolve({ ...JSON.parse(out) as Omit<UploadStormResult, 'peakRssMiB'>, peakRssMiB })
    })
  })
}
