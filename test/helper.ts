import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import { createSigner } from 'fast-jwt'
import type { LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type App, type BuildOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { users, type Role } from '../src/db/schema.js'
import { createUser } from '../src/users.js'

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A fresh app on its own SQLite file, closed and removed when the test ends. */
export async function build (t: Teardown, env: Record<string, string> = {}, options: BuildOptions = {}): Promise<App> {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-test-'))
  const config = loadConfig({
    JWT_SECRET: TEST_SECRET,
    DATABASE_URL: join(dir, 'inkwell.db'),
    UPLOADS_DIR: join(dir, 'uploads'),
    LOG_LEVEL: 'silent',
    // Tests log in far more often than a person; the throttling tests lower these again.
    AUTH_RATE_LIMIT: '100000',
    LOGIN_FAILURE_LIMIT: '1000',
    ...env
  })
  const app = await buildApp(config, options.logStream === undefined ? { logger: false, ...options } : options)
  t.teardown(async () => {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return app
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
  if (opts.active === false) setActive(app, user.id, false)
  return { id: user.id, username, email, password: PASSWORD, ...tokens, auth: { authorization: `Bearer ${tokens.access}` } }
}

export function setActive (app: App, id: number, isActive: boolean): void {
  app.db.update(users).set({ isActive }).where(eq(users.id, id)).run()
}

export function setRole (app: App, id: number, role: Role): void {
  app.db.update(users).set({ role }).where(eq(users.id, id)).run()
}

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

/** The one error shape, with exactly this status, reason phrase and message (a `code` may be added). */
export function isError (t: Test, res: LightMyRequestResponse, status: number, error: string, message: string, what: string) {
  t.equal(res.statusCode, status, `${what}: ${status}`)
  const body = res.json()
  t.equal(body.message, message, `${what}: message "${message}"`)
  t.equal(body.error, error, `${what}: error "${error}"`)
  t.equal(body.statusCode, status, `${what}: statusCode in the body`)
  t.same(Object.keys(body).filter((k) => !['statusCode', 'error', 'message', 'code'].includes(k)), [],
    `${what}: nothing but the error shape`)
}
