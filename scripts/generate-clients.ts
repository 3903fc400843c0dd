// Generates clients from openapi.json, each with its generator's own CLI and default settings (only
// the output path, and orval's fetch client, are chosen). None is committed: `npm run generate:clients`
// writes all three into clients/ (git ignores them), `npm run generate:types` only clients/schema.d.ts
// (the types under clients/index.ts, which `npm run typecheck` makes first), and
// test/openapi/sdk-generators.test.ts generates them afresh into a temporary folder.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { projectRoot } from '../src/paths.js'

export interface Generator {
  name: string
  /** What it writes, relative to the clients folder: one file or one folder of its own. */
  output: string
  bin: string
  args: (clientsDir: string) => string[]
}

export const GENERATORS: Generator[] = [
  {
    name: 'openapi-typescript',
    output: 'schema.d.ts',
    bin: 'openapi-typescript',
    // clients/redocly.yaml only stops it from linting with Redocly's defaults (npm run lint:openapi does that).
    args: (dir) => ['openapi.json', '--redocly', 'clients/redocly.yaml', '-o', join(dir, 'schema.d.ts')]
  },
  {
    name: '@hey-api/openapi-ts',
    output: 'hey-api',
    bin: 'openapi-ts',
    args: (dir) => ['-i', 'openapi.json', '-o', join(dir, 'hey-api')]
  },
  {
    name: 'orval',
    output: 'orval',
    bin: 'orval',
    args: (dir) => ['--input', 'openapi.json', '--output', join(dir, 'orval', 'inkwell.ts'), '--client', 'fetch']
  }
]

/** Nothing leaves the machine: orval's dependency @scarf/scarf reports usage unless told not to. */
export const OFFLINE_ENV = { ...process.env, SCARF_ANALYTICS: 'false', DO_NOT_TRACK: '1' }

/** Runs one generator from the project root (so `openapi.json` is the input) into `clientsDir`. */
export async function generate (generator: Generator, clientsDir: string): Promise<void> {
  await promisify(execFile)(join(projectRoot, 'node_modules', '.bin', generator.bin), generator.args(clientsDir), {
    cwd: projectRoot, env: OFFLINE_ENV, timeout: 120_000
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // `generate-clients.ts openapi-typescript`: only the generators named.
  const chosen = process.argv.slice(2)
  for (const generator of GENERATORS.filter((g) => chosen.length === 0 || chosen.includes(g.name))) {
    await generate(generator, join(projectRoot, 'clients'))
    console.log(`${generator.name} → clients/${generator.output}`)
  }
}
