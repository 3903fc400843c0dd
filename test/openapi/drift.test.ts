import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { projectRoot } from '../../src/paths.js'

/** JSON pointers where two documents differ, so a failure names what changed. */
function differences (a: unknown, b: unknown, at = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return Object.is(a, b) ? [] : [at || '/']
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  return [...keys].flatMap((key) => differences(
    (a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key],
    `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`))
}

t.test('the committed openapi.json is what the server publishes at /docs/json', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-drift-'))
  // The configuration scripts/export-openapi.ts uses: the defaults (the document quotes some of them).
  const app = await buildApp(loadConfig({ DATABASE_URL: ':memory:', LOG_LEVEL: 'silent', UPLOADS_DIR: join(dir, 'uploads') }), { logger: false })
  t.teardown(async () => {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const res = await app.inject({ url: '/docs/json' })
  t.equal(res.statusCode, 200)

  let committed: unknown
  try {
    committed = JSON.parse(readFileSync(join(projectRoot, 'openapi.json'), 'utf8'))
  } catch (err) {
    t.fail(`openapi.json is missing or not JSON (${(err as Error).message}): run \`npm run openapi\` and commit it`)
    return
  }
  const changed = differences(committed, res.json())
  t.same(changed, [], changed.length === 0
    ? 'openapi.json is up to date'
    : `openapi.json differs from /docs/json at ${changed.slice(0, 5).join(', ')}` +
      `${changed.length > 5 ? ` and ${changed.length - 5} more` : ''}: run \`npm run openapi\` ` +
      'and commit it')
})
