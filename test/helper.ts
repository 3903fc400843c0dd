import { mkdtempSync, rmSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { count, eq, sql, type SQL } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { createSigner } from 'fast-jwt'
import type { LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type App, type BuildOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import type { Role } from '../src/policy.js'
import { createUser } from '../src/domain/users.js'
import { testDatabase, testRedis } from './support/services.js'
import { smtpServer, type Inbox } from './support/smtp.js'

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789'

export interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * A fresh app on a database of its own, closed and removed when the test ends: a SQLite file, or
 * with TEST_ENGINE=postgres a schema of its own in TEST_DATABASE_URL (and a key prefix of its own in
 * TEST_REDIS_URL), so test files still run in parallel.
 */
export async function build (t: Teardown, env: Record<string, string> = {}, options: BuildOptions = {}): Promise<App> {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = loadConfig({
    JWT_SECRET: TEST_SECRET,
    DATABASE_URL: await testDatabase(t, join(dir, 'inkwell.db')),
    ...await testRedis(t),
    UPLOADS_DIR: join(dir, 'uploads'),
    MAIL_OUTBOX_DIR: join(dir, 'outbox'),
    LOG_LEVEL: 'silent',
    // Tests log in far more often than a person; the throttling tests lower these again.
    AUTH_RATE_LIMIT: '100000',
    LOGIN_FAILURE_LIMIT: '1000',
    ...env
  })
  const app = await buildApp(config, options.logStream === undefined ? { logger: false, ...options } : options)
  t.teardown(() => app.close())
  return app
}

/**
 * An app whose mail goes over SMTP to a real server (a fresh one, or `inbox`), retried after 50 and
 * 100 ms and given up after 500 ms, so the mail flows can be followed from the mails received.
 */
export async function buildWithMail (t: Teardown, env: Record<string, string> = {}, inbox?: Inbox): Promise<{ app: App, inbox: Inbox }> {
  const box = inbox ?? await smtpServer(t)
  const app = await build(t, { SMTP_URL: `smtp://127.0.0.1:${box.port}`, ...env }, { mail: { retryDelaysMs: [50, 100], timeoutMs: 500 } })
  return { app, inbox: box }
}

export const PASSWORD = 'a perfectly fine passphrase'

let counter = 0

export interface TestUser {
  id: number
  username: string
  email: string
  password: string
  access: string
  refresh: string
  /** `{ authorization: 'Bearer <access>' }`, ready for inject. */
  auth: { authorization: string }
}

export async function login (app: App, username: string, password = PASSWORD): Promise<{ access: string, refresh: string }> {
  const res = await app.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  const body = res.json()
  return { access: body.access_token, refresh: body.refresh_token }
}

/** Creates a user straight through the domain module (faster than HTTP) and logs them in over HTTP. */
export async function loginAs (app: App, role: Role = 'user', opts: { active?: boolean } = {}): Promise<TestUser> {
  const n = ++counter
  const username = `${role}_${n}`
  const email = `${username}@example.com`
  const user = await createUser(app.db, { email, username, password: PASSWORD, role })
  const tokens = await login(app, username)
  if (opts.active === false) await setActive(app, user.id, false)
  return { id: user.id, username, email, password: PASSWORD, ...tokens, auth: { authorization: `Bearer ${tokens.access}` } }
}

/** Changes a user's row behind the API's back (no audit, no session change): for setting up a case. */
export async function updateUserRow (app: App, id: number, change: { isActive?: boolean, role?: Role, avatar?: string | null }): Promise<void> {
  const { users } = app.db.t
  await app.db.transaction((tx) => tx.q.update(users).set(change).where(eq(users.id, id)))
}

export const setActive = (app: App, id: number, isActive: boolean) => updateUserRow(app, id, { isActive })
export const setRole = (app: App, id: number, role: Role) => updateUserRow(app, id, { role })

/** Signs arbitrary claims with the test secret: for tokens the server itself would never issue. */
export function signAccess (claims: Record<string, unknown>, options: Record<string, unknown> = {}): string {
  return createSigner({ key: TEST_SECRET, algorithm: 'HS256', ...options })(claims)
}

export const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

export const CREDENTIALS_401 = {
  statusCode: 401,
  error: 'Unauthorized',
  message: 'Could not validate credentials',
  code: 'INVALID_CREDENTIALS'
}

/** The exact bytes of the one 401, checked with its header. */
export function isCredentials401 (res: LightMyRequestResponse): boolean {
  return res.statusCode === 401 &&
    res.headers['www-authenticate'] === 'Bearer' &&
    res.body === JSON.stringify(CREDENTIALS_401)
}

export const isIsoUtc = (value: unknown) =>
  typeof value === 'string' && value.endsWith('Z') && new Date(value).toISOString() === value

/**
 * The one error shape, as JSON: exactly `{statusCode, error, message}` plus an optional string `code`,
 * with this status and its reason phrase, this message (or one that matches), and this code when one
 * is given.
 */
export function isError (t: Test, res: LightMyRequestResponse, status: number, message: string | RegExp, what: string, code?: string) {
  t.equal(res.statusCode, status, `${what}: ${status}`)
  t.match(String(res.headers['content-type']), /^application\/json/, `${what}: JSON`)
  let body: Record<string, unknown> = {}
  try {
    body = res.json()
  } catch {
    t.fail(`${what}: the body is JSON (got ${res.body.slice(0, 200)})`)
  }
  if (typeof message === 'string') t.equal(body.message, message, `${what}: message "${message}"`)
  else t.match(body.message, message, `${what}: message ${message}`)
  t.equal(body.error, STATUS_CODES[status], `${what}: error "${STATUS_CODES[status]}"`)
  t.equal(body.statusCode, status, `${what}: statusCode in the body`)
  t.same(Object.keys(body).filter((k) => !['statusCode', 'error', 'message', 'code'].includes(k)), [],
    `${what}: nothing but the error shape`)
  if (code !== undefined) t.equal(body.code, code, `${what}: code ${code}`)
  else t.ok(body.code === undefined || typeof body.code === 'string', `${what}: a code, if any, is a string`)
}

export const badRequest = (t: Test, res: LightMyRequestResponse, message: string, what: string) =>
  isError(t, res, 400, message, what)
export const inactive = (t: Test, res: LightMyRequestResponse, what: string) =>
  isError(t, res, 403, 'Inactive account', what)
export const postNotFound = (t: Test, res: LightMyRequestResponse, what: string) =>
  isError(t, res, 404, 'Post not found', what)

/** The one 401 of every token failure; on a failure the comment shows what came instead. */
export function the401 (t: Test, res: LightMyRequestResponse, what: string) {
  if (!t.ok(isCredentials401(res), `${what}: the one 401`)) t.comment(res.statusCode, res.body)
}

/** Rows of a raw query on either engine (for checks that drizzle's builder cannot express). */
export async function sqlRows<T = Record<string, unknown>> (app: App, query: SQL): Promise<T[]> {
  if (app.db.engine === 'postgres') return (await app.db.q.execute(query)).rows as T[]
  return (app.db.q as unknown as { all: (q: SQL) => T[] }).all(query)
}

/** Runs a raw statement that returns no rows (DDL, a migration's SQL) on either engine. */
export async function sqlRun (app: App, query: SQL): Promise<void> {
  if (app.db.engine === 'postgres') await app.db.q.execute(query)
  else (app.db.q as unknown as { run: (q: SQL) => unknown }).run(query)
}

/** count(*) of a table, optionally filtered, as a number on either engine. */
export async function countRows (app: App, table: PgTable, where?: SQL): Promise<number> {
  const [row] = await app.db.q.select({ n: count() }).from(table).where(where)
  return row?.n ?? 0
}

/**
 * Makes every UPDATE of `table.column` (or INSERT into `table`) fail inside the database, as a full
 * disk or a lost connection would: for tests of what a failed write leaves behind. Returns the undo.
 */
export async function injectWriteFailure (app: App, table: string, event: 'INSERT' | `UPDATE OF ${string}`): Promise<() => Promise<void>> {
  const name = `inject_${table}_${event.split(' ')[0]!.toLowerCase()}`
  if (app.db.engine === 'postgres') {
    await app.db.q.execute(sql.raw(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`))
    await app.db.q.execute(sql.raw(`CREATE TRIGGER ${name} BEFORE ${event} ON ${table} FOR EACH ROW EXECUTE FUNCTION ${name}()`))
    return async () => { await app.db.q.execute(sql.raw(`DROP FUNCTION ${name}() CASCADE`)) }
  }
  const run = (text: string) => (app.db.q as unknown as { run: (q: SQL) => unknown }).run(sql.raw(text))
  run(`CREATE TRIGGER ${name} BEFORE ${event} ON ${table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
  return async () => { run(`DROP TRIGGER ${name}`) }
}

/** The application's tables (the migrator's own excluded), by name, on either engine. */
export async function tableNames (app: App): Promise<string[]> {
  const rows = app.db.engine === 'postgres'
    ? await sqlRows<{ name: string }>(app, sql`select tablename as name from pg_tables where schemaname = current_schema() and tablename not like '__drizzle%' order by 1`)
    : await sqlRows<{ name: string }>(app, sql`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%' order by 1`)
  return rows.map((r) => r.name)
}

/** The 400 message for the first property of `payload` that a body schema with these `known` properties refuses. */
export function unknownProperty (payload: object, known: readonly string[]): string {
  return `body has an unknown property "${Object.keys(payload).find((k) => !known.includes(k))}"`
}
