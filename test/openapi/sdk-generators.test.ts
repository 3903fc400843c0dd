import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { generate, GENERATORS, OFFLINE_ENV } from '../../scripts/generate-clients.js'
import { projectRoot } from '../../src/paths.js'
import { build, CREDENTIALS_401 } from '../helper.js'

// Each generator makes its client from the committed openapi.json, with its defaults, into a fresh
// folder (no generated code is committed); each client is type-checked under `strict` together with a
// consumer's journey (clients/journeys/, copied beside them), and the journey is run against a
// listening server. The folder sits inside the project, so the journeys resolve its node_modules.
const JOURNEYS = [
  { generator: 'openapi-typescript + openapi-fetch', journey: 'openapi-fetch', username: 'via_openapi_fetch', client: ['index.ts', 'schema.d.ts'] },
  { generator: '@hey-api/openapi-ts', journey: 'hey-api', username: 'via_hey_api', client: ['hey-api/'] },
  { generator: 'orval (fetch client)', journey: 'orval', username: 'via_orval', client: ['orval/'] }
]

const run = promisify(execFile)
const bin = (name: string) => join(projectRoot, 'node_modules', '.bin', name)

/** A folder like clients/ with freshly generated clients: the generators' output, clients/index.ts and the journeys. */
async function freshClients (): Promise<string> {
  const cache = join(projectRoot, 'node_modules', '.cache')
  mkdirSync(cache, { recursive: true })
  const dir = mkdtempSync(join(cache, 'inkwell-sdk-'))
  await Promise.all(GENERATORS.map((generator) => generate(generator, dir)))
  cpSync(join(projectRoot, 'clients', 'index.ts'), join(dir, 'index.ts'))
  cpSync(join(projectRoot, 'clients', 'journeys'), join(dir, 'journeys'), { recursive: true })
  // ES modules, as in the project (a folder below node_modules/ would otherwise be read as CommonJS).
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  return dir
}

/** tsc's diagnostics for all the journeys (one program: one start-up instead of three), '' when it accepts them. */
async function typeCheck (dir: string, journeyFile: (journey: string) => string): Promise<string> {
  try {
    await run(bin('tsc'), ['-p', strictTsconfig(dir, JOURNEYS.map(({ journey }) => journeyFile(journey))), '--pretty', 'false'],
      { cwd: projectRoot, timeout: 120_000 })
    return ''
  } catch (err) {
    const { stdout = '', message } = err as { stdout?: string, message: string }
    return stdout || message
  }
}

/** A consumer's compiler settings: `strict`, ES modules, and the fetch types a browser or Node 20 has. */
function strictTsconfig (dir: string, files: string[]): string {
  const path = join(dir, 'tsconfig.json')
  writeFileSync(path, JSON.stringify({
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023', 'DOM'],
      types: ['node'],
      typeRoots: [join(projectRoot, 'node_modules', '@types')],
      noEmit: true,
      skipLibCheck: true
    },
    files
  }))
  return path
}

interface Observed {
  registered: { status: number, user: unknown }
  login: { status: number, token_type: string }
  created: { status: number, post: { id: number } }
  like: { status: number }
  listed: { status: number, post: unknown }
  unauthorized: { status: number, error: unknown }
  forbidden: { status: number, error: unknown }
  /** The openapi-fetch journey also logs in with an authenticator app. */
  totp?: unknown
}

t.test('each generated client type-checks under strict and walks a journey against a listening server', async (t) => {
  const app = await build(t)
  // What reached the server's token endpoint, as sent on the wire: the journeys log in with a form.
  const tokenRequests: Array<string | undefined> = []
  app.addHook('onRequest', async (request) => {
    if (request.method === 'POST' && request.url === '/auth/token') tokenRequests.push(request.headers['content-type'])
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const dir = await freshClients()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const journeyFile = (journey: string) => join(dir, 'journeys', `${journey}.ts`)
  // One diagnostic per `file(line,col): error ...` (paths relative to the project), with its indented continuation lines.
  const diagnostics = (await typeCheck(dir, journeyFile)).split(/\n(?=\S)/).filter((text) => text.trim() !== '')
  const below = relative(projectRoot, dir)
  const ownPaths = ({ journey, client }: typeof JOURNEYS[number]) => [...client, `journeys/${journey}.ts`].map((path) => `${below}/${path}`)
  const about = (paths: string[]) => diagnostics.filter((text) => paths.some((path) => text.startsWith(path)))
  t.same(diagnostics.filter((text) => !JOURNEYS.some((j) => about(ownPaths(j)).includes(text))), [],
    'tsc reports nothing outside the clients and their journeys')

  for (const entry of JOURNEYS) {
    const { generator, journey, username } = entry
    await t.test(generator, async (t) => {
      const file = journeyFile(journey)
      t.same(about(ownPaths(entry)), [], 'the generated client and the journey type-check under strict')

      const before = tokenRequests.length
      const { stdout } = await run(bin('tsx'), [file, baseUrl, username], { cwd: projectRoot, env: OFFLINE_ENV, timeout: 60_000 })
      const seen = JSON.parse(stdout) as Observed

      t.equal(seen.registered.status, 201, 'register: 201')
      t.match(seen.registered.user, { username, email: `${username}@example.com`, role: 'user', email_verified: false })
      t.same({ ...seen.login }, { status: 200, token_type: 'bearer' }, 'login: a token pair')
      const logins = tokenRequests.slice(before)
      t.ok(logins.length > 0 && logins.every((type) => type === 'application/x-www-form-urlencoded'), 'every login went out as a form', { logins })
      t.equal(seen.created.status, 201, 'create a post: 201')
      t.match(seen.created.post, { title: `Hello from ${username}`, author: { username }, like_count: 0, liked: false })
      t.equal(seen.like.status, 204, 'like: 204')
      t.equal(seen.listed.status, 200, 'list: 200')
      t.match(seen.listed.post, { id: seen.created.post.id, like_count: 1, liked: true }, 'the list shows the post as liked by the caller')
      t.same(seen.unauthorized, { status: 401, error: CREDENTIALS_401 }, 'no token: the 401, read as a typed ErrorResponse')
      t.same(seen.forbidden, { status: 403, error: { statusCode: 403, error: 'Forbidden', message: 'Requires role: admin', code: 'ROLE_REQUIRED' } },
        'a user on an /admin route: the 403, read as a typed ErrorResponse')

      if (journey === 'openapi-fetch') {
        t.same(seen.totp, {
          confirmed: { status: 200, codes: 10 },
          firstStep: { status: 403, code: 'MFA_REQUIRED' },
          secondStep: { status: 200, token_type: 'bearer' },
          mfa: { totp: true, passkeys: 0, recovery_codes_left: 10 }
        }, 'an authenticator app turned on, then a login in two steps (403 MFA_REQUIRED, then grant_type=mfa_otp), all typed')
      }

      // The server stored what the client said: read back past the client.
      const stored = await app.inject({ url: `/posts/${seen.created.post.id}` })
      t.match(stored.json(), { id: seen.created.post.id, title: `Hello from ${username}`, author: { username }, like_count: 1 })
    })
  }
})
