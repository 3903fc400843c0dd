// `npm run bench`: builds the real server, seeds a database, starts Inkwell and the hand-written
// reference server (bench/reference-server.ts) pinned to core 0, drives them with autocannon from
// this process pinned to core 1, prints a table and writes bench/results.json.
//
//   npm run bench                     the scenario table (about two minutes)
//   npm run bench -- --duration 10    seconds of load per scenario (default 5)
//   npm run bench -- --scale          page latency at 10 k, 100 k and 1 M posts
//   npm run bench -- --engine postgres
//                                     the same table on PostgreSQL (--database-url, default
//                                     postgres://postgres@127.0.0.1:5432/inkwell_bench, dropped and
//                                     recreated), plus rows for two Inkwell processes on that database
//   npm run bench -- --rounds 3 --ratios-only
//                                     the rows compared with the reference only, measured 3 times with
//                                     the servers interleaved (the order alternating): medians, and the
//                                     median of each round's ratio, for a machine that is not quiet
//   options: --connections N (50), --skip-build, --keep (leave the database behind),
//            --scale-max N (1000000), --out FILE (bench/results.json, bench/results-postgres.json,
//            or bench/scale-results.json)
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import { cpuSeconds, hasTaskset, load, loadMany, pinSelf, postgresCpuSeconds, probe, rssMiB, startServer, uploadStorm, type LoadRequest, type LoadResult, type Server } from './load.js'
import { BENCH_PASSWORD, benchUsername, dropPostgres, growPosts, seedDatabase, seedPostgres } from './seed.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    scale: { type: 'boolean', default: false },
    'scale-max': { type: 'string', default: '1000000' },
    'skip-build': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    engine: { type: 'string', default: 'sqlite' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/inkwell_bench' },
    out: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    'ratios-only': { type: 'boolean', default: false }
  }
})

function positive (name: string, raw: string, max: number): number {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max}, got ${raw}`)
  return n
}

const seconds = positive('duration', args.duration, 120)
const connections = positive('connections', args.connections, 1000)
const scaleMax = positive('scale-max', args['scale-max'], 1_000_000)
const rounds = positive('rounds', args.rounds, 50)
if (args.engine !== 'sqlite' && args.engine !== 'postgres') throw new Error(`--engine must be sqlite or postgres, got ${args.engine}`)
const postgres = args.engine === 'postgres'
if (postgres && args.scale) throw new Error('--scale runs on SQLite only')
const WARMUP_SECONDS = 2
const SEED = { users: 2_000, posts: 5_000, likes: 50_000 }
const TOKEN_USERS = 20

const JWT_SECRET = 'bench-secret-of-more-than-32-bytes-0123456789'

// Two cores or more: servers on core 0, this process (autocannon, probes) on core 1.
// (Counted before pinning: once pinned, this process sees one core.)
const cores = availableParallelism()
const pinned = cores >= 2 && hasTaskset() && pinSelf(1)
const serverCore = pinned ? 0 : undefined

function log (line: string): void {
  console.log(line)
}

function build (): void {
  if (args['skip-build']) return log('build skipped (--skip-build): using the existing dist/')
  log('building: npm run build, and the reference server')
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'bench/tsconfig.json'], { cwd: root, stdio: 'inherit' })
}

function serverEnv (dir: string, database: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    DATABASE_URL: database,
    UPLOADS_DIR: join(dir, 'uploads'),
    JWT_SECRET,
    LOG_LEVEL: 'warn',
    // The bench logs in continuously from one address: nothing may throttle it.
    AUTH_RATE_LIMIT: '1000000000',
    LOGIN_FAILURE_LIMIT: '1000000000'
  }
}

const startInkwell = (dir: string, database: string) =>
  startServer('inkwell', [join(root, 'dist/src/server.js')], serverEnv(dir, database), serverCore)

const startReference = (dir: string, database: string, cache: boolean, bare = false) =>
  startServer(bare ? 'bare reference' : cache ? 'reference+cache' : 'reference',
    [join(root, 'dist/bench/reference-server.js'), ...(cache ? ['--cache'] : []), ...(bare ? ['--bare'] : [])],
    serverEnv(dir, database), serverCore)

async function token (server: Server, n: number): Promise<string> {
  const res = await fetch(`${server.url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: benchUsername(n), password: BENCH_PASSWORD })
  })
  if (res.status !== 200) throw new Error(`login of ${benchUsername(n)} failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { access_token: string }).access_token
}

/** Fails loudly when a scenario's request does not do what it should, before it is measured. */
async function check (server: Server, req: LoadRequest, expect: (status: number, body: string) => boolean): Promise<void> {
  const res = await fetch(server.url + req.path, {
    method: req.method ?? 'GET',
    headers: req.headers ?? {},
    ...(req.body !== undefined && { body: req.body })
  })
  const body = await res.text()
  if (!expect(res.status, body)) throw new Error(`${server.name} ${req.method ?? 'GET'} ${req.path}: unexpected ${res.status} ${body.slice(0, 300)}`)
}

const UPLOADERS = 30

/** Fails loudly unless both servers answer `req` alike: the same JSON value and the same headers. */
async function sameResponse (a: Server, b: Server, req: LoadRequest): Promise<void> {
  const fetchOne = async (server: Server) => {
    const res = await fetch(server.url + req.path, { headers: req.headers ?? {} })
    const headers = [...res.headers].filter(([name]) => name !== 'date').map(([name, value]) => name === 'x-request-id' ? `${name}: <uuid>` : `${name}: ${value}`)
    return { status: res.status, body: JSON.parse(await res.text()) as unknown, headers: headers.sort() }
  }
  const [x, y] = [await fetchOne(a), await fetchOne(b)]
  const same = (p: unknown, q: unknown) => isDeepStrictEqual(p, q)
  if (x.status !== y.status || !same(x.body, y.body) || !same(x.headers, y.headers)) {
    throw new Error(`${a.name} and ${b.name} answer ${req.path} differently:\n${JSON.stringify(x).slice(0, 2000)}\n${JSON.stringify(y).slice(0, 2000)}`)
  }
}

interface Row extends LoadResult {
  scenario: string
  server: string
  rssMiB: number
  /** Server CPU time (all threads; every process of the row) per 2xx response, microseconds. */
  cpuUs: number
  /** PostgreSQL's CPU time (every postgres process) per 2xx response, microseconds. */
  dbCpuUs?: number
  note?: string
  /** With --rounds: each round's req/s, and each round's ratio to the references (inkwell rows). */
  roundsRps?: number[]
  roundRatios?: Record<string, number[]>
  /** The same, of CPU time per response (the reference's over Inkwell's: above 1 when Inkwell spends less). */
  roundCpuRatios?: Record<string, number[]>
  /** The same, of the server's and PostgreSQL's CPU time per response together. */
  roundTotalCpuRatios?: Record<string, number[]>
}

const fmt = (n: number, digits = 1) => Number.isFinite(n) ? n.toFixed(digits) : '-'

const median = (values: number[]) => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

type Measure = 'rps' | 'cpu' | 'total'
const totalCpu = (r: Row) => r.cpuUs + (r.dbCpuUs ?? 0)

/** One row for one server's rounds: medians (the largest RSS), counts summed, each round's req/s kept. */
function mergeRounds (measured: Row[]): Row {
  const first = measured[0] as Row
  if (measured.length === 1) return first
  return {
    ...first,
    rps: median(measured.map((r) => r.rps)),
    p50: median(measured.map((r) => r.p50)),
    p99: median(measured.map((r) => r.p99)),
    cpuUs: median(measured.map((r) => r.cpuUs)),
    ...(postgres && { dbCpuUs: median(measured.map((r) => r.dbCpuUs ?? NaN)) }),
    rssMiB: Math.max(...measured.map((r) => r.rssMiB)),
    ok: measured.reduce((n, r) => n + r.ok, 0),
    non2xx: measured.reduce((n, r) => n + r.non2xx, 0),
    errors: measured.reduce((n, r) => n + r.errors, 0),
    roundsRps: measured.map((r) => Math.round(r.rps))
  }
}

/** Each round's ratios of `ours` to every other server's row of the same round: req/s, CPU, and CPU with PostgreSQL's. */
function roundRatiosOf (ours: Row[], others: Array<[name: string, rows: Row[]]>): Pick<Row, 'roundRatios' | 'roundCpuRatios' | 'roundTotalCpuRatios'> {
  const each = (ratio: (mine: Row, theirs: Row) => number) =>
    Object.fromEntries(others.map(([name, theirs]) => [name, ours.map((r, i) => ratio(r, theirs[i] as Row))]))
  return {
    roundRatios: each((mine, theirs) => mine.rps / theirs.rps),
    roundCpuRatios: each((mine, theirs) => theirs.cpuUs / mine.cpuUs),
    ...(postgres && { roundTotalCpuRatios: each((mine, theirs) => totalCpu(theirs) / totalCpu(mine)) })
  }
}

/**
 * Inkwell's req/s against a reference's (`cpu`: the reference's CPU per response against Inkwell's,
 * which a busy machine disturbs less; `total`: the same with PostgreSQL's CPU added on both sides): with
 * rounds, the median of the ratios of the same round and their range. Rows of several Inkwell processes
 * (`inkwell ×2`) are compared with the reference's (`reference ×2`).
 */
function ratio (rows: Row[], row: Row, server: string, measure: Measure = 'rps'): string {
  if (!row.server.startsWith('inkwell')) return ''
  const counterpart = row.server.replace('inkwell', server)
  const paired = { rps: row.roundRatios, cpu: row.roundCpuRatios, total: row.roundTotalCpuRatios }[measure]?.[counterpart]
  const known = paired?.filter((v) => !Number.isNaN(v))
  if (known !== undefined && known.length > 0) return `${median(known).toFixed(2)}× (${Math.min(...known).toFixed(2)}–${Math.max(...known).toFixed(2)})`
  const ref = rows.find((r) => r.scenario === row.scenario && r.server === counterpart)
  if (ref === undefined) return ''
  const value = { rps: row.rps / ref.rps, cpu: ref.cpuUs / row.cpuUs, total: totalCpu(ref) / totalCpu(row) }[measure]
  return `${value.toFixed(2)}×`
}

function table (rows: Row[]): string {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', ...(postgres ? ['DB µs/req'] : []), 'RSS MiB', '× ref', '× ref+cache', '× bare ref', 'CPU × ref', 'CPU × ref+cache', ...(postgres ? ['CPU+DB × ref'] : [])]
  const body = rows.map((r) => [
    r.scenario, r.server, fmt(r.rps, 0), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.cpuUs, 0), ...(postgres ? [fmt(r.dbCpuUs ?? NaN, 0)] : []),
    fmt(r.rssMiB, 0), ratio(rows, r, 'reference'), ratio(rows, r, 'reference+cache'), ratio(rows, r, 'bare reference'),
    ratio(rows, r, 'reference', 'cpu'), ratio(rows, r, 'reference+cache', 'cpu'), ...(postgres ? [ratio(rows, r, 'reference', 'total')] : [])
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] as string).length)))
  const line = (cells: string[]) => '| ' + cells.map((c, i) => i >= 2 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)).join(' | ') + ' |'
  const rule = '|' + widths.map((w, i) => i >= 2 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2)).join('|') + '|'
  return [line(header), rule, ...body.map(line)].join('\n')
}

function machine () {
  const cpu = cpus()[0]
  return {
    node: process.version,
    cpu: cpu?.model ?? 'unknown',
    cores,
    pinning: pinned ? 'servers on core 0, load generator on core 1 (taskset)' : 'none (taskset missing or one core)',
    ...(postgres && { database: 'PostgreSQL on this machine, not pinned (it runs on either core)' })
  }
}

async function scenarios (): Promise<void> {
  build()
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-bench-'))
  const database = postgres ? args['database-url'] : join(dir, 'bench.db')
  const rows: Row[] = []
  const servers: Server[] = []
  try {
    if (postgres) await seedPostgres(database, { ...SEED, log })
    else await seedDatabase(database, { ...SEED, log })
    const inkwell = await startInkwell(dir, database)
    servers.push(inkwell)
    const reference = await startReference(dir, database, false)
    servers.push(reference)
    const referenceCached = await startReference(dir, database, true)
    servers.push(referenceCached)
    // The reference without Inkwell's headers and logger: what those cost, shown beside the fair ratio.
    const bareReference = await startReference(dir, database, false, true)
    servers.push(bareReference)
    log(`servers: ${servers.map((s) => `${s.name} pid ${s.pid}`).join(', ')}; ${machine().pinning}`)

    // Real sessions, logged in through Inkwell; the reference servers read the same database.
    const tokens: string[] = []
    for (let n = 1; n <= TOKEN_USERS; n++) tokens.push(await token(inkwell, n))
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` })
    const owner = tokens[0] as string // user 1 owns posts 1..10

    const health: LoadRequest[] = [{ path: '/health' }]
    const me: LoadRequest[] = tokens.map((t) => ({ path: '/users/me', headers: bearer(t) }))
    const postsAnonymous: LoadRequest[] = [{ path: '/posts?limit=20' }]
    const postsToken: LoadRequest[] = tokens.map((t) => ({ path: '/posts?limit=20', headers: bearer(t) }))
    const patch: LoadRequest[] = Array.from({ length: 10 }, (_, i) => ({
      method: 'PATCH',
      path: `/posts/${i + 1}`,
      headers: { ...bearer(owner), 'content-type': 'application/json' },
      body: JSON.stringify({ title: `Edited in the benchmark ${i}` })
    }))
    const login: LoadRequest[] = Array.from({ length: TOKEN_USERS }, (_, i) => ({
      method: 'POST',
      path: '/auth/token',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: benchUsername(i + 1), password: BENCH_PASSWORD })
    }))

    const isJson = (status: number, body: string, test: (v: Record<string, unknown>) => boolean) => {
      if (status !== 200) return false
      try { return test(JSON.parse(body) as Record<string, unknown>) } catch { return false }
    }
    const fullPage = (v: Record<string, unknown>) => Array.isArray(v.items) && v.items.length === 20 && v.total === SEED.posts
    const likedPage = (v: Record<string, unknown>) => fullPage(v) && (v.items as { liked?: unknown }[]).every((p) => typeof p.liked === 'boolean')

    /** Loads `server` (or several processes at once, the connections split between them: one row). */
    async function measure (scenario: string, server: Server | Server[], requests: LoadRequest[], conns = connections): Promise<Row> {
      const group = Array.isArray(server) ? server : [server]
      const name = group.length === 1 ? (group[0] as Server).name : `${(group[0] as Server).name} ×${group.length}`
      const urls = group.map((s) => s.url)
      const cpu = () => group.reduce((sum, s) => sum + cpuSeconds(s.pid), 0)
      await loadMany(urls, requests, { connections: conns, seconds: WARMUP_SECONDS })
      const cpuBefore = cpu()
      const dbBefore = postgres ? postgresCpuSeconds() : NaN
      const result = await loadMany(urls, requests, { connections: conns, seconds })
      const cpuUs = (cpu() - cpuBefore) / result.ok * 1e6
      // (Rarely, a postgres process's time leaves /proc before it reaches the postmaster's reaped-children
      // total, and the sum goes down: that round has no DB figure rather than a wrong one.)
      const dbDelta = postgresCpuSeconds() - dbBefore
      const dbCpuUs = dbDelta < 0 ? NaN : dbDelta / result.ok * 1e6
      const row: Row = {
        scenario,
        server: name,
        ...result,
        cpuUs,
        ...(postgres && { dbCpuUs }),
        rssMiB: group.reduce((sum, s) => sum + rssMiB(s.pid), 0)
      }
      rows.push(row)
      const trouble = result.non2xx + result.errors > 0 ? `  !! ${result.non2xx} non-2xx, ${result.errors} errors` : ''
      log(`  ${scenario.padEnd(34)} ${name.padEnd(16)} ${fmt(result.rps, 0).padStart(7)} req/s  p50 ${fmt(result.p50, 2)} ms  p99 ${fmt(result.p99, 2)} ms  ${fmt(cpuUs, 0)} µs CPU/req` +
        (postgres ? `  ${fmt(dbCpuUs, 0)} µs DB/req` : '') + trouble)
      return row
    }

    log(`\n${seconds} s per scenario after ${WARMUP_SECONDS} s of warm-up, ${connections} connections` +
      (rounds > 1 ? `, ${rounds} rounds with the servers interleaved` : ''))
    // The reference answers the same response as Inkwell (bench/reference-server.ts): checked here,
    // bodies as JSON values (key order aside) and every header but the date and the request id's value.
    const meCheck = (s: number, b: string) => isJson(s, b, (v) => v.username === benchUsername(1))
    const anonymousCheck = (s: number, b: string) => isJson(s, b, (v) => fullPage(v) && !('liked' in ((v.items as object[])[0] ?? {})))
    const tokenCheck = (s: number, b: string) => isJson(s, b, likedPage)
    const compared: Array<[string, LoadRequest[], Server[], (status: number, body: string) => boolean]> = [
      ['GET /health', health, [inkwell, reference, bareReference], (s) => s === 200],
      ['GET /users/me', me, [inkwell, reference, referenceCached, bareReference], meCheck],
      ['GET /posts?limit=20 anonymous', postsAnonymous, [inkwell, reference, bareReference], anonymousCheck],
      ['GET /posts?limit=20 with token', postsToken, [inkwell, reference, bareReference], tokenCheck]
    ]
    for (const [scenario, requests, group, expect] of compared) {
      for (const server of group) await check(server, requests[0] as LoadRequest, expect)
      await sameResponse(inkwell, reference, requests[0] as LoadRequest)
      const perServer = new Map<string, Row[]>()
      for (let round = 0; round < rounds; round++) {
        // Alternate the order, so neither side always runs first after a change of load on the machine.
        for (const server of round % 2 === 0 ? group : [...group].reverse()) {
          const row = await measure(scenario, server, requests)
          rows.pop()
          perServer.set(server.name, [...perServer.get(server.name) ?? [], row])
        }
      }
      for (const server of group) {
        const measured = perServer.get(server.name) as Row[]
        const row = mergeRounds(measured)
        if (server === inkwell && rounds > 1) {
          Object.assign(row, roundRatiosOf(measured, group.filter((s) => s !== inkwell).map((s) => [s.name, perServer.get(s.name) as Row[]])))
        }
        rows.push(row)
      }
    }
    // The Conduit API's lists of 20 with a token (docs/conduit.md): the article page and the feed, each
    // in alternating rounds with Inkwell's own page with a token, so their ratio is the same moment's.
    const articlesOf = (v: Record<string, unknown>) => Array.isArray(v.articles) ? v.articles as Array<Record<string, unknown>> : []
    const conduitLists: Array<[string, string, (v: Record<string, unknown>) => boolean]> = [
      ['GET /api/articles?limit=20 with token', '/api/articles?limit=20', (v) => articlesOf(v).length === 20 && v.articlesCount === SEED.posts],
      ['GET /api/articles/feed?limit=20', '/api/articles/feed?limit=20', (v) => articlesOf(v).length === 20 && articlesOf(v).every((a) => (a.author as { following?: unknown }).following === true)]
    ]
    for (const [scenario, path, test] of conduitLists) {
      const requests: LoadRequest[] = tokens.map((t) => ({ path, headers: { authorization: `Token ${t}` } }))
      await check(inkwell, requests[0] as LoadRequest, (s, b) => isJson(s, b, test))
      const ours: Row[] = []
      const native: Row[] = []
      for (let round = 0; round < rounds; round++) {
        for (const conduit of round % 2 === 0 ? [true, false] : [false, true]) {
          const row = conduit ? await measure(scenario, inkwell, requests) : await measure('GET /posts?limit=20 with token', inkwell, postsToken)
          rows.pop()
          ;(conduit ? ours : native).push(row)
        }
      }
      const row = mergeRounds(ours)
      const page = mergeRounds(native)
      const referencePage = rows.find((r) => r.scenario === 'GET /posts?limit=20 with token' && r.server === 'reference')
      row.note = `${(row.rps / page.rps).toFixed(2)}× the req/s and ${(row.cpuUs / page.cpuUs).toFixed(2)}× the CPU per response of Inkwell's own ` +
        'GET /posts?limit=20 with token in the same rounds' + (referencePage === undefined ? '' : `; ${(row.rps / referencePage.rps).toFixed(2)}× the reference's page`)
      rows.push(row)
    }
    if (postgres) {
      // A second process of Inkwell and of the reference on the same database (pinned like the first),
      // the load split over both: what sharing PostgreSQL costs. Their RSS and CPU columns add up both
      // processes; the two pairs take turns as the single processes do.
      const second = await startInkwell(dir, database)
      servers.push(second)
      const secondReference = await startReference(dir, database, false)
      servers.push(secondReference)
      log(`  second processes: inkwell pid ${second.pid}, reference pid ${secondReference.pid}`)
      const pairs = [[inkwell, second], [reference, secondReference]] as const
      for (const [scenario, requests] of [['GET /users/me', me], ['GET /posts?limit=20 with token', postsToken]] as const) {
        for (const server of [second, secondReference]) await check(server, requests[0] as LoadRequest, (s) => s === 200)
        const measured = new Map<string, Row[]>()
        for (let round = 0; round < rounds; round++) {
          for (const pair of round % 2 === 0 ? pairs : [...pairs].reverse()) {
            const row = await measure(scenario, [...pair], [...requests])
            rows.pop()
            measured.set(row.server, [...measured.get(row.server) ?? [], row])
          }
        }
        const [ours, theirs] = [measured.get('inkwell ×2') as Row[], measured.get('reference ×2') as Row[]]
        const two = mergeRounds(ours)
        if (rounds > 1) Object.assign(two, roundRatiosOf(ours, [['reference ×2', theirs]]))
        const one = rows.find((r) => r.scenario === scenario && r.server === 'inkwell') as Row
        two.note = `${(two.rps / one.rps).toFixed(2)}× the req/s of one process`
        rows.push(two, mergeRounds(theirs))
      }
    }
    // --ratios-only stops here: the rows without a reference (writes, logins, the storm) take long.
    if (!args['ratios-only']) {
      await check(inkwell, patch[0] as LoadRequest, (s, b) => isJson(s, b, (v) => v.id === 1))
      await measure('PATCH /posts/{id} (owner)', inkwell, patch)
      await check(inkwell, login[0] as LoadRequest, (s) => s === 200)
      await measure('POST /auth/token (argon2)', inkwell, login)

      // The latency of ordinary requests while logins saturate the thread pool: a paced probe
      // (4 clients, one request each every 20 ms: about 200 req/s), alone and then during a storm.
      const probeOptions = { workers: 4, intervalMs: 20, seconds }
      await probe(inkwell.url, me[0] as LoadRequest, { ...probeOptions, seconds: 1 })
      const alone = await probe(inkwell.url, me[0] as LoadRequest, probeOptions)
      // (No CPU per request for the paced probes: at 200 req/s timers and idle work would dominate it.)
      rows.push({ scenario: 'GET /users/me ~200 req/s, alone', server: 'inkwell', ...alone, cpuUs: NaN, rssMiB: rssMiB(inkwell.pid) })
      log(`  GET /users/me paced probe, no other load: p50 ${fmt(alone.p50, 2)} ms, p99 ${fmt(alone.p99, 2)} ms`)
      const storm = load(inkwell.url, login, { connections, seconds: seconds + 2 })
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const during = await probe(inkwell.url, me[0] as LoadRequest, probeOptions)
      const stormResult = await storm
      rows.push({
        scenario: 'GET /users/me ~200 req/s, login storm',
        server: 'inkwell',
        ...during,
        cpuUs: NaN,
        rssMiB: rssMiB(inkwell.pid),
        note: `${fmt(stormResult.rps, 0)} logins/s alongside (${connections} connections)`
      })
      log(`  GET /users/me paced probe during a login storm (${fmt(stormResult.rps, 0)} logins/s): p50 ${fmt(during.p50, 2)} ms, p99 ${fmt(during.p99, 2)} ms` +
        (during.non2xx + during.errors > 0 ? `  !! ${during.non2xx} non-2xx, ${during.errors} errors` : ''))

      // The same probe while UPLOADERS clients keep uploading a 5 MB image (issue 13: the latency of
      // everyone else during an upload storm): all as one user, then spread over the other token users.
      // The caps' refusals (429 per user, 503 in all, with Retry-After) are counted, not failures.
      for (const [label, uploadTokens] of [['one user', [tokens[1] as string]], [`${TOKEN_USERS - 1} users`, tokens.slice(1)]] as const) {
        const rssBefore = rssMiB(inkwell.pid)
        const storm = uploadStorm(inkwell, [...uploadTokens], { uploaders: UPLOADERS, seconds: seconds + 3 })
        await new Promise((resolve) => setTimeout(resolve, 1500))
        const duringUploads = await probe(inkwell.url, me[0] as LoadRequest, probeOptions)
        const uploads = await storm
        const answers = Object.entries(uploads.statuses).sort().map(([k, n]) => `${n}× ${k}`).join(', ')
        const summary = `${fmt(uploads.storedPerSecond, 1)} uploads/s stored (${fmt(uploads.imageMiB, 1)} MiB each; answers ${answers}), ` +
          `RSS ${fmt(rssBefore, 0)} MiB before, ${fmt(uploads.peakRssMiB, 0)} MiB at most`
        rows.push({
          scenario: `GET /users/me ~200 req/s, ${UPLOADERS} uploaders, ${label}`,
          server: 'inkwell',
          ...duringUploads,
          cpuUs: NaN,
          rssMiB: uploads.peakRssMiB,
          note: summary
        })
        log(`  GET /users/me paced probe during ${UPLOADERS} parallel 5 MB uploads, ${label} (${summary}): ` +
          `p50 ${fmt(duringUploads.p50, 2)} ms, p99 ${fmt(duringUploads.p99, 2)} ms` +
          (duringUploads.non2xx + duringUploads.errors > 0 ? `  !! ${duringUploads.non2xx} non-2xx, ${duringUploads.errors} errors` : ''))
      }
    }
  } finally {
    for (const server of servers) await server.stop()
    if (!args.keep) {
      rmSync(dir, { recursive: true, force: true })
      if (postgres) await dropPostgres(database)
    } else log(`database kept in ${postgres ? database : dir}`)
  }

  log('\n' + table(rows))
  for (const r of rows) if (r.note !== undefined) log(`${r.scenario}, ${r.server}: ${r.note}`)
  const out = args.out ?? join(root, 'bench', postgres ? 'results-postgres.json' : 'results.json')
  writeFileSync(out, JSON.stringify({
    date: new Date().toISOString(),
    machine: machine(),
    settings: {
      ...(postgres && { engine: 'postgres', databaseUrl: database, poolSizePerProcess: 10 }),
      seconds, warmupSeconds: WARMUP_SECONDS, connections, seed: SEED, tokenUsers: TOKEN_USERS, rounds
    },
    rows: rows.map((r) => ({
      ...r,
      vsReference: ratio(rows, r, 'reference') || undefined,
      vsReferenceCached: ratio(rows, r, 'reference+cache') || undefined,
      vsBareReference: ratio(rows, r, 'bare reference') || undefined,
      cpuVsReference: ratio(rows, r, 'reference', 'cpu') || undefined,
      cpuVsReferenceCached: ratio(rows, r, 'reference+cache', 'cpu') || undefined,
      ...(postgres && { cpuWithDatabaseVsReference: ratio(rows, r, 'reference', 'total') || undefined })
    }))
  }, null, 2) + '\n')
  log(`\nwritten to ${out}`)
}

/** Page latency as the posts table grows: sizes 10 k, 100 k, 1 M (up to --scale-max), several offsets. */
async function scale (): Promise<void> {
  build()
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-scale-'))
  const database = join(dir, 'scale.db')
  const sizes = [10_000, 100_000, 1_000_000].filter((n) => n <= scaleMax)
  if (!sizes.includes(scaleMax)) sizes.push(scaleMax)
  interface ScaleRow { posts: number, request: string, p50: number, p99: number, cpuUs: number, n: number }
  const rows: ScaleRow[] = []
  try {
    await seedDatabase(database, { users: SEED.users, posts: Math.min(sizes[0] as number, 10_000), likes: SEED.likes, log })
    for (const size of sizes) {
      log(`growing to ${size.toLocaleString('en')} posts`)
      growPosts(database, size, { log })
      const server = await startInkwell(dir, database)
      try {
        const auth = { authorization: `Bearer ${await token(server, 1)}` }
        // User 2 has about size / users posts: a per-author page at every size.
        const requests: [string, LoadRequest][] = [
          ['GET /posts?limit=20 (first page)', { path: '/posts?limit=20' }],
          ['GET /posts?limit=20 with token', { path: '/posts?limit=20', headers: auth }],
          ['GET /users/2/posts?limit=20', { path: '/users/2/posts?limit=20' }]
        ]
        for (const skip of [1_000, 10_000, 100_000, 500_000]) {
          if (skip < size - 20) requests.push([`GET /posts?limit=20&skip=${skip}`, { path: `/posts?limit=20&skip=${skip}` }])
        }
        requests.push(['GET /posts?limit=20, last page', { path: `/posts?limit=20&skip=${size - 20}` }])
        // The same last page by cursor: the next_cursor of the page before it (one deep skip, not measured).
        const beforeLast = await fetch(`${server.url}/posts?limit=20&skip=${size - 40}`)
        const cursor = ((await beforeLast.json()) as { next_cursor: string | null }).next_cursor
        if (cursor === null) throw new Error('the page before the last answered no next_cursor')
        requests.push(['GET /posts?limit=20&cursor=…, last page', { path: `/posts?limit=20&cursor=${cursor}` }])
        for (const [name, req] of requests) {
          // Sequential requests on one connection: latency without queueing. Bounded in count and time.
          await probe(server.url, req, { workers: 1, intervalMs: 0, seconds: 1, maxRequests: 20 })
          const cpuBefore = cpuSeconds(server.pid)
          const result = await probe(server.url, req, { workers: 1, intervalMs: 0, seconds: 4, maxRequests: 500 })
          const cpuUs = (cpuSeconds(server.pid) - cpuBefore) / result.ok * 1e6
          if (result.non2xx + result.errors > 0) throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`)
          rows.push({ posts: size, request: name, p50: result.p50, p99: result.p99, cpuUs, n: result.ok })
          log(`  ${size.toLocaleString('en').padStart(9)} posts  ${name.padEnd(36)} p50 ${fmt(result.p50, 2).padStart(7)} ms` +
            `  p99 ${fmt(result.p99, 2).padStart(7)} ms  ${fmt(cpuUs, 0).padStart(6)} µs CPU/req  (${result.ok} requests)`)
        }
      } finally {
        await server.stop()
      }
    }
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true })
    else log(`database kept in ${dir}`)
  }

  const header = `| request | ${sizes.map((s) => `${s.toLocaleString('en')} posts: p50 / p99 ms, CPU µs`).join(' | ')} |`
  // In order of first appearance, the last page at the end.
  const names = [...new Set(rows.map((r) => r.request))].sort((a, b) => Number(a.endsWith('last page')) - Number(b.endsWith('last page')))
  const lines = names.map((name) => `| ${name} | ${sizes.map((s) => {
    const r = rows.find((x) => x.request === name && x.posts === s)
    return r === undefined ? '-' : `${fmt(r.p50, 2)} / ${fmt(r.p99, 2)}, ${fmt(r.cpuUs, 0)}`
  }).join(' | ')} |`)
  log('\n' + [header, `|---|${sizes.map(() => '---:').join('|')}|`, ...lines].join('\n'))
  const first = (s: number) => rows.find((r) => r.posts === s && r.request.includes('first page'))
  const small = first(sizes[0] as number)
  const large = first(sizes[sizes.length - 1] as number)
  if (small !== undefined && large !== undefined && small !== large) {
    log(`\nfirst page, ${large.posts.toLocaleString('en')} vs ${small.posts.toLocaleString('en')} posts: ` +
      `p50 ${(large.p50 / small.p50).toFixed(2)}×, server CPU ${(large.cpuUs / small.cpuUs).toFixed(2)}×`)
  }
  const out = args.out ?? join(root, 'bench', 'scale-results.json')
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: machine(), rows }, null, 2) + '\n')
  log(`written to ${out}`)
}

if (args.scale) await scale()
else await scenarios()
