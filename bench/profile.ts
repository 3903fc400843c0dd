// CPU profile of one route under load (bench/PROFILING.md): seeds a SQLite database as `npm run bench`
// does, starts the built server (or the reference) with `node --cpu-prof`, drives one route with
// autocannon, stops the server (the profile is written at exit) and prints where the time went: the
// functions with the most self time, and the self time by package.
//
//   npm run build && node --import tsx bench/profile.ts --route me            (inkwell)
//   node --import tsx bench/profile.ts --route posts --server reference      (the hand-written reference)
//   node --import tsx bench/profile.ts --summarize some.cpuprofile           (an existing profile)
//
// Routes: health, me, posts (anonymous), posts-token. Options: --seconds N (10), --connections N (50),
// --top N (25), --keep (keep the profile and the database; the path is printed).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { load, startServer, type LoadRequest } from './load.js'
import { BENCH_PASSWORD, benchUsername, seedDatabase } from './seed.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values: args } = parseArgs({
  options: {
    route: { type: 'string', default: 'me' },
    server: { type: 'string', default: 'inkwell' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    top: { type: 'string', default: '25' },
    keep: { type: 'boolean', default: false },
    summarize: { type: 'string' }
  }
})

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

/** Which package (or part of Node) a frame belongs to: what the time by package is summed over. */
function packageOf (url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)'
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : rest[0] ?? url
  }
  const inRepo = url.indexOf('/dist/')
  return inRepo >= 0 ? `inkwell ${url.slice(inRepo + 6).split('/').slice(0, -1).join('/')}` : url
}

export function summarize (file: string, top: number, requests?: number, skipSeconds = 0): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  // Samples of start-up and warm-up (module loading, schema compilation, first JIT) are left out.
  let at = 0
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0
    if (at >= skipSeconds * 1e6) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0)
  const busy = total - idle
  const frames = new Map<string, number>()
  const packages = new Map<string, number>()
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = (byId.get(id) as ProfileNode).callFrame
    if (functionName === '(idle)') continue
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')
    const key = `${functionName || '(anonymous)'}  ${short}${url === '' ? '' : `:${lineNumber + 1}`}`
    frames.set(key, (frames.get(key) ?? 0) + us)
    const pkg = packageOf(url, functionName)
    packages.set(pkg, (packages.get(pkg) ?? 0) + us)
  }
  // Per request when the number of requests is known: comparable across servers and runs.
  const pct = (us: number) => `${(100 * us / busy).toFixed(1).padStart(5)} %` +
    (requests === undefined ? '' : `  ${(us / requests).toFixed(1).padStart(6)} µs/req`)
  const lines = [`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled after the first ${skipSeconds.toFixed(1)} s` +
    (requests === undefined ? '' : `, ${requests} requests: ${(busy / requests).toFixed(1)} µs/req`) + ' (self time)', '', 'by package:']
  for (const [pkg, us] of [...packages].sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`  ${pct(us)}  ${pkg}`)
  lines.push('', `top ${top} functions:`)
  for (const [key, us] of [...frames].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${key}`)
  return lines.join('\n')
}

const ROUTES: Record<string, (auth: Record<string, string>) => LoadRequest> = {
  health: () => ({ path: '/health' }),
  me: (auth) => ({ path: '/users/me', headers: auth }),
  posts: () => ({ path: '/posts?limit=20' }),
  'posts-token': (auth) => ({ path: '/posts?limit=20', headers: auth })
}

async function main (): Promise<void> {
  if (args.summarize !== undefined) return console.log(summarize(args.summarize, Number(args.top)))
  const route = ROUTES[args.route]
  if (route === undefined) throw new Error(`--route must be one of ${Object.keys(ROUTES).join(', ')}`)
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-profile-'))
  const database = join(dir, 'bench.db')
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: database,
    UPLOADS_DIR: join(dir, 'uploads'),
    JWT_SECRET: 'bench-secret-of-more-than-32-bytes-0123456789',
    LOG_LEVEL: 'warn',
    AUTH_RATE_LIMIT: '1000000000',
    LOGIN_FAILURE_LIMIT: '1000000000'
  }
  try {
    await seedDatabase(database, { users: 2_000, posts: 5_000, likes: 50_000, log: console.log })
    // Tokens come from Inkwell (the reference reads the same sessions), then the profiled server starts.
    const issuer = await startServer('inkwell', [join(root, 'dist/src/server.js')], env, undefined)
    const res = await fetch(`${issuer.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: benchUsername(1), password: BENCH_PASSWORD })
    })
    const { access_token: token } = await res.json() as { access_token: string }
    await issuer.stop()
    const script = args.server === 'inkwell' ? 'dist/src/server.js' : 'dist/bench/reference-server.js'
    const extra = args.server === 'reference+cache' ? ['--cache'] : []
    const spawned = performance.now()
    const server = await startServer(args.server, ['--cpu-prof', '--cpu-prof-dir', dir, join(root, script), ...extra], env, 0)
    const request = route({ authorization: `Bearer ${token}` })
    await load(server.url, [request], { connections: Number(args.connections), seconds: 2 })
    const skipSeconds = (performance.now() - spawned) / 1000
    const result = await load(server.url, [request], { connections: Number(args.connections), seconds: Number(args.seconds) })
    await server.stop()
    console.log(`${args.server} ${request.path}: ${result.rps.toFixed(0)} req/s under the profiler, ${result.non2xx} non-2xx`)
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error('no profile written')
    console.log(summarize(join(dir, file), Number(args.top), result.ok, skipSeconds))
    if (args.keep) console.log(`\nprofile: ${join(dir, file)} (open it in Chrome DevTools' Performance panel or speedscope)`)
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true })
  }
}

await main()
