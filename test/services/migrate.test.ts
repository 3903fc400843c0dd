// Several processes starting at once on one PostgreSQL database: the migrations run once (an advisory
// lock), every process comes up, and the schema is what drizzle/postgres describes.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { migrationsRoot } from '../../src/paths.js'
import { runCli } from '../support/cli.js'
import { postgresSchema } from '../support/services.js'

const journal = JSON.parse(readFileSync(join(migrationsRoot, 'postgres', 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }

async function inSchema<T> (url: string, query: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(query)).rows as T[]
  } finally {
    await client.end()
  }
}

t.test('four `cli migrate` processes at once on a fresh database: all exit 0, each migration applied once', async (t) => {
  // Trust authentication ignores the password; it is here to check that no output repeats it.
  const url = (await postgresSchema(t, 'migrate')).replace('postgres://postgres@', 'postgres://postgres:pw-never-printed@')
  const runs = await Promise.all(Array.from({ length: 4 }, () => runCli({ DATABASE_URL: url }, 'migrate')))
  t.same(runs.map((r) => r.code), [0, 0, 0, 0], `every process exits 0 (${runs.map((r) => r.stderr.trim()).filter(Boolean).join(' | ')})`)
  t.ok(runs.every((r) => r.stdout.includes('Migrations applied')), 'each says so')
  t.notOk(runs.some((r) => (r.stdout + r.stderr).includes('pw-never-printed')), 'no process prints the password of DATABASE_URL')

  const applied = await inSchema<{ hash: string }>(url, 'select hash from __drizzle_migrations')
  t.equal(applied.length, journal.entries.length, `${journal.entries.length} migrations recorded, none twice`)
  const tables = (await inSchema<{ name: string }>(url, "select tablename as name from pg_tables where schemaname = current_schema() order by 1")).map((r) => r.name)
  t.same(tables, [
    '__drizzle_migrations', 'account_tokens', 'audit_log', 'comments', 'follows', 'likes', 'mfa_challenges', 'passkeys', 'post_tags', 'posts',
    'recovery_codes', 'refresh_tokens', 'row_counts', 'sessions', 'tags', 'totp_factors', 'users', 'webauthn_challenges'
  ], 'the tables, in this schema only')
  const triggers = (await inSchema<{ name: string }>(url, 'select distinct trigger_name as name from information_schema.triggers where trigger_schema = current_schema() order by 1')).map((r) => r.name)
  t.same(triggers, ['likes_count', 'post_tags_count', 'posts_count'], 'the counters\' triggers')
  const [counter] = await inSchema<{ n: string }>(url, "select n from row_counts where name = 'posts'")
  t.equal(counter?.n, '0', 'the posts counter starts at 0')

  const again = await runCli({ DATABASE_URL: url }, 'migrate')
  t.equal(again.code, 0, 'a later migrate finds nothing to do and exits 0')
  t.equal((await inSchema(url, 'select hash from __drizzle_migrations')).length, journal.entries.length, 'and records nothing new')
})

t.test('an unreachable PostgreSQL stops `cli migrate` with an error, not a hang', async (t) => {
  const started = Date.now()
  const run = await runCli({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' }, 'migrate')
  t.not(run.code, 0, 'a non-zero exit')
  t.match(run.stderr, /ECONNREFUSED|connect/, 'the connection error is told')
  t.ok(Date.now() - started < 15_000, 'within the connection timeout')
})
