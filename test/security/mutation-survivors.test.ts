// Tests written for mutants that survived `npm run mutate` (test/README.md, "Mutation testing"): each asserts
// the behaviour a one-line bug changed without any test noticing. (test/security/mutants.test.ts holds
// the ones found by hand before StrykerJS ran.)
import { createHmac } from 'node:crypto'
import { eq, isNotNull } from 'drizzle-orm'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import type { App } from '../../src/app.js'
import { MemoryLoginThrottle } from '../../src/domain/login-throttle.js'
import { checkPassword } from '../../src/domain/passwords.js'
import { build, countRows, isCredentials401, isError, loginAs, PASSWORD, signAccess, TEST_SECRET, type TestUser } from '../helper.js'

t.test('someone else\'s post: the 403 carries its code, NOT_OWNER, for edits and deletions alike', async (t) => {
  const app = await build(t)
  const author = await loginAs(app)
  const other = await loginAs(app)
  const id = (await app.inject({ method: 'POST', url: '/posts', headers: author.auth, payload: { title: 'mine', content: 'mine' } })).json().id
  for (const method of ['PATCH', 'DELETE'] as const) {
    const res = await app.inject({ method, url: `/posts/${id}`, headers: other.auth, ...(method === 'PATCH' ? { payload: { title: 'theirs' } } : {}) })
    isError(t, res, 403, 'Forbidden', 'Not your post', method)
    t.equal(res.json().code, 'NOT_OWNER', `${method}: code NOT_OWNER`)
  }
  const post = (await app.inject({ url: `/posts/${id}` })).json()
  t.equal(post.title, 'mine', 'the post is unchanged')
})

t.test('an admin PATCH that changes nothing writes nothing: no update, no audit entry', async (t) => {
  const app = await build(t)
  const admin = await loginAs(app, 'admin')
  const user = await loginAs(app, 'moderator')
  const row = async () => (await app.inject({ url: '/admin/users?limit=100', headers: admin.auth })).json().items
    .find((u: { id: number }) => u.id === user.id)
  const before = await row()
  await new Promise((resolve) => setTimeout(resolve, 1100)) // updated_at has whole seconds on SQLite
  const res = await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: admin.auth, payload: { role: 'moderator', is_active: true } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), before, 'the answer is the user as they were')
  t.equal((await row()).updated_at, before.updated_at, 'updated_at did not move')
  t.equal((await app.inject({ url: '/admin/audit', headers: admin.auth })).json().total, 0, 'and the audit log is empty')
  t.equal((await app.inject({ url: '/users/me', headers: user.auth })).statusCode, 200, 'the user\'s session lives on')
})

t.test('the in-memory login throttle: expired pairs go first, wherever they are in the map', async (t) => {
  const throttle = new MemoryLoginThrottle(1, 60_000, 2)
  await throttle.recordFailure('live', 'c', 30_000)
  await throttle.recordFailure('stale', 'c', 0)
  await throttle.recordFailure('new', 'c', 70_000)
  t.equal(await throttle.retryAfter('live', 'c', 70_000), 20, 'the first pair in the map is live: kept')
  t.equal(await throttle.retryAfter('new', 'c', 70_000), 60)
})

t.test('the in-memory login throttle keeps at most `limit` failures a pair, however many arrive', async (t) => {
  const throttle = new MemoryLoginThrottle(3, 60_000, 100)
  for (let i = 0; i < 50; i++) await throttle.recordFailure('sprayed', 'c', 1_000 + i)
  // White-box: the bound is on memory, which no answer shows; the answers stay those of the newest three.
  const failures = Reflect.get(throttle, 'failures') as Map<string, number[]>
  t.same(failures.get('sprayed\nc'), [1_047, 1_048, 1_049], 'the newest three, nothing older')
  t.equal(await throttle.retryAfter('sprayed', 'c', 2_000), 60, 'counted from the oldest of them')
})

t.test('the in-memory login throttle tells accounts apart by lower case, as usernames are compared', async (t) => {
  const throttle = new MemoryLoginThrottle(1, 60_000, 100)
  await throttle.recordFailure('straße', 'c', 0)
  t.equal(await throttle.retryAfter('STRASSE', 'c', 0), 0, '"STRASSE" is another account: upper-casing would merge them')
  t.equal(await throttle.retryAfter('Straße', 'c', 0), 60, 'the same account in another case is the same pair')
})

const loginWith = (app: App, user: TestUser, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/token', headers, payload: { username: user.username, password: PASSWORD } })
const refreshWith = (app: App, token: string) =>
  app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: token } })
const sessionsOf = async (app: App, auth: Record<string, string>) => (await app.inject({ url: '/users/me/sessions', headers: auth })).json()
const unix = () => Math.floor(Date.now() / 1000)

t.test('a session keeps 512 characters of a longer User-Agent', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const agent = `Agent/${'x'.repeat(600)}`
  const res = await loginWith(app, user, { 'user-agent': agent })
  t.equal(res.statusCode, 200)
  const mine = (await sessionsOf(app, { authorization: `Bearer ${res.json().access_token}` })).items.find((s: { current: boolean }) => s.current)
  t.equal(mine.user_agent, agent.slice(0, 512), 'the first 512 characters')
})

t.test('sessions past their expiry: unlisted, not endable, and swept from the table by the next login', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const { sessions } = app.db.t
  const second = (await loginWith(app, user)).json()
  const auth = { authorization: `Bearer ${second.access_token}` }
  const first = (await sessionsOf(app, auth)).items.find((s: { current: boolean }) => !s.current)
  await app.db.transaction((tx) => tx.q.update(sessions).set({ expiresAt: unix() - 1 }).where(eq(sessions.id, first.id)))

  t.same((await sessionsOf(app, auth)).items.map((s: { id: string }) => s.id).includes(first.id), false, 'an expired session is not listed')
  isError(t, await app.inject({ method: 'DELETE', url: `/users/me/sessions/${first.id}`, headers: auth }), 404, 'Not Found', 'Session not found', 'nor can it be ended')
  t.equal(await countRows(app, sessions, eq(sessions.id, first.id)), 1, 'it is still in the table')
  t.equal((await loginWith(app, user)).statusCode, 200, 'a login')
  t.equal(await countRows(app, sessions, eq(sessions.id, first.id)), 0, 'sweeps it')
  t.equal(await countRows(app, sessions, eq(sessions.userId, user.id)), 2, 'and only it')
})

t.test('a refresh pushes the session\'s expiry to a full refresh-token lifetime from now', async (t) => {
  const app = await build(t, { REFRESH_TOKEN_TTL: '3600' })
  const user = await loginAs(app)
  const { sessions } = app.db.t
  await app.db.transaction((tx) => tx.q.update(sessions).set({ expiresAt: unix() + 60, lastUsedAt: unix() - 600 }).where(eq(sessions.userId, user.id)))
  const res = await refreshWith(app, user.refresh)
  t.equal(res.statusCode, 200)
  const [row] = await app.db.q.select().from(sessions).where(eq(sessions.userId, user.id))
  t.ok(row!.expiresAt >= unix() + 3600 - 2 && row!.expiresAt <= unix() + 3600, `expires an hour from now (${row!.expiresAt - unix()} s)`)
  t.ok(row!.lastUsedAt >= unix() - 2, 'last used now')
})

t.test('a refresh token whose row expires this very second is refused', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const { refreshTokens } = app.db.t
  await app.db.transaction((tx) => tx.q.update(refreshTokens).set({ expiresAt: unix() }))
  t.ok(isCredentials401(await refreshWith(app, user.refresh)), 'expires_at = now: expired')
  t.equal((await app.inject({ url: '/users/me', headers: user.auth })).statusCode, 200, 'the session itself is not ended by it')
})

/** What only the server could sign: a token under the refresh tokens' own key, with any claims. */
function signRefresh (claims: Record<string, unknown>, options: Record<string, unknown> = {}) {
  const key = createHmac('sha256', TEST_SECRET).update('inkwell:refresh-token:v1').digest()
  return createSigner({ key, algorithm: 'HS256', ...options })(claims)
}

t.test('refresh tokens: the claims are checked, not only the signature', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const real = JSON.parse(Buffer.from(user.refresh.split('.')[1]!, 'base64url').toString())
  t.ok(real.exp - real.iat >= 604_800 - 1 && real.exp - real.iat <= 604_800, `a refresh token lives REFRESH_TOKEN_TTL seconds (${real.exp - real.iat})`)
  t.equal(real.type, 'refresh')
  t.equal(signRefresh(real), user.refresh, 'signed here with the same claims, it is the same token: the test holds the server\'s key')
  const forged: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
    ['type access', { ...real, type: 'access' }],
    ['no type', { ...real, type: undefined }],
    ['a numeric sid', { ...real, sid: 12345 }],
    ['no exp', { ...real, exp: undefined, iat: undefined }],
    ['no jti', { ...real, jti: undefined }],
    ['no sub', { ...real, sub: undefined }]
  ]
  for (const [what, claims] of forged) {
    t.ok(isCredentials401(await refreshWith(app, signRefresh(JSON.parse(JSON.stringify(claims))))), `${what}: the one 401`)
  }
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${user.refresh}` } })), 'a refresh token is no access token')
  t.ok(isCredentials401(await refreshWith(app, user.access)), 'nor the reverse')
  t.equal((await refreshWith(app, user.refresh)).statusCode, 200, 'the real one still works: nothing above spent it')
})

t.test('the user id in an access token is canonical decimal: any other spelling of the right id is refused', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const { sid } = JSON.parse(Buffer.from(user.access.split('.')[1]!, 'base64url').toString())
  const access = (sub: string) => ({ authorization: `Bearer ${signAccess({ sub, sid, type: 'access', iat: unix(), exp: unix() + 600 })}` })
  t.equal((await app.inject({ url: '/users/me', headers: access(String(user.id)) })).statusCode, 200, 'control: the id as the server writes it')
  for (const sub of [`0${user.id}`, ` ${user.id}`, `${user.id} `, `+${user.id}`, `${user.id}.0`, `${user.id}e0`, `0x${user.id.toString(16)}`, `${user.id}\n`]) {
    t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: access(sub) })), `sub ${JSON.stringify(sub)}: the one 401`)
  }
})

t.test('each refusal of a guard names its reason in `code`', async (t) => {
  const app = await build(t, { REQUIRE_VERIFIED_EMAIL: 'true' })
  app.get('/t/staff', { preHandler: app.requireRole('moderator', 'admin') }, async () => ({ ok: true }))
  app.get('/t/manage', { preHandler: app.requirePermission('post:edit_any', 'user:manage') }, async () => ({ ok: true }))
  app.get('/t/active', { preHandler: app.requireActiveUser }, async (request) => ({ id: request.user?.id }))
  const verified = async (u: TestUser) => {
    await app.db.transaction((tx) => tx.q.update(app.db.t.users).set({ emailVerified: true }).where(eq(app.db.t.users.id, u.id)))
    return u
  }
  const user = await verified(await loginAs(app))
  const mod = await verified(await loginAs(app, 'moderator'))
  const admin = await verified(await loginAs(app, 'admin'))
  const unverified = await loginAs(app, 'admin')
  const idle = await verified(await loginAs(app, 'admin', { active: false }))
  const get = (url: string, u: TestUser) => app.inject({ url, headers: u.auth })
  const refused = async (url: string, u: TestUser, message: string, code: string, what: string) => {
    const res = await get(url, u)
    isError(t, res, 403, 'Forbidden', message, what)
    t.equal(res.json().code, code, `${what}: code ${code}`)
  }

  await refused('/t/staff', user, 'Requires role: moderator or admin', 'ROLE_REQUIRED', 'a user on a staff route')
  await refused('/t/manage', mod, 'Requires permission: user:manage', 'PERMISSION_REQUIRED', 'a moderator: the first permission it lacks')
  await refused('/t/manage', user, 'Requires permission: post:edit_any', 'PERMISSION_REQUIRED', 'a user lacks both: the first is named')
  await refused('/t/active', idle, 'Inactive account', 'INACTIVE_ACCOUNT', 'an inactive admin')
  await refused('/t/active', unverified, 'Email not verified', 'EMAIL_NOT_VERIFIED', 'an unverified admin, with REQUIRE_VERIFIED_EMAIL')
  await refused('/t/staff', unverified, 'Email not verified', 'EMAIL_NOT_VERIFIED', 'before the role is looked at')
  t.same((await get('/t/active', user)).json(), { id: user.id }, 'a verified active user passes')
  t.same((await get('/t/manage', admin)).json(), { ok: true }, 'an admin has every permission')
  t.same((await get('/t/staff', mod)).json(), { ok: true }, 'a moderator is staff')
})

t.test('a refused login is its own 401: another message, code INVALID_LOGIN, and WWW-Authenticate', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const res = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: user.username, password: 'not the password' } })
  isError(t, res, 401, 'Unauthorized', 'Incorrect username or password', 'a wrong password')
  t.equal(res.json().code, 'INVALID_LOGIN')
  t.equal(res.headers['www-authenticate'], 'Bearer')
})

t.test('a spent refresh token replayed after it expired still ends its session: reuse is checked before expiry', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const rotated = await refreshWith(app, user.refresh)
  t.equal(rotated.statusCode, 200)
  const next = rotated.json()
  const { refreshTokens } = app.db.t
  await app.db.transaction((tx) => tx.q.update(refreshTokens).set({ expiresAt: unix() - 10 }).where(isNotNull(refreshTokens.usedAt)))
  t.ok(isCredentials401(await refreshWith(app, user.refresh)), 'the spent, expired token: 401')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.access_token}` } })), 'and the session\'s newest access token is dead')
  t.ok(isCredentials401(await refreshWith(app, next.refresh_token)), 'and its newest refresh token')
})

t.test('an access token whose sid is not a string is the one 401, never a 500', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  for (const sid of [true, 12345, {}, ['x'], null]) {
    const token = signAccess({ sub: String(user.id), sid, type: 'access', iat: unix(), exp: unix() + 600 })
    t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })), `sid ${JSON.stringify(sid)}: the one 401`)
  }
})

t.test('under a prefix guard, a route\'s own preHandler still runs, after it', async (t) => {
  const app = await build(t)
  const order: string[] = []
  await app.register(async (scope) => {
    scope.protect(scope.requireActiveUser)
    scope.get('/strict', { preHandler: scope.requireRole('admin') }, async () => ({ ok: true }))
    scope.get('/traced', { preHandler: [async () => { order.push('own') }] }, async () => ({ order }))
  }, { prefix: '/t' })
  const user = await loginAs(app)
  const admin = await loginAs(app, 'admin')
  isError(t, await app.inject({ url: '/t/strict', headers: user.auth }), 403, 'Forbidden', 'Requires role: admin', 'the route\'s own, stricter guard')
  t.same((await app.inject({ url: '/t/strict', headers: admin.auth })).json(), { ok: true }, 'an admin passes both')
  t.ok(isCredentials401(await app.inject({ url: '/t/traced' })), 'the prefix guard first: anonymous never reaches the route\'s own hook')
  t.same(order, [], 'which did not run')
  t.same((await app.inject({ url: '/t/traced', headers: user.auth })).json(), { order: ['own'] }, 'with a token, it runs')
})

t.test('the document says what each guard requires, as the guards say it', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  t.equal(doc.paths['/admin/users'].get.description, '**Requires** role `admin`, an active account.', 'an admin route')
  t.match(doc.paths['/posts/{id}'].patch.description, /\*\*Requires\*\* permission `post:edit_own`, an active account\.$/, 'a permission route')
  t.match(doc.paths['/users/me/password'].put.description ?? '', /\*\*Requires\*\* an active account\.$/, 'an active-user route')
  t.equal(doc.paths['/users/me'].get.description?.includes('**Requires**') ?? false, false, 'a route any logged-in user may call requires nothing more')
})

t.test('passwords: stored as argon2id with OWASP\'s parameters; a damaged hash verifies nothing; 8-character common passwords are common', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'argon@example.com', username: 'argon_user', password: PASSWORD } })
  t.equal(res.statusCode, 201)
  const [row] = await app.db.q.select({ hash: app.db.t.users.passwordHash }).from(app.db.t.users).where(eq(app.db.t.users.id, res.json().id))
  t.match(row!.hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'argon2id, m=19456 KiB, t=2, p=1')
  t.same(await checkPassword('not-a-hash', PASSWORD), { valid: false, rehash: false }, 'a damaged hash: invalid, not an exception')
  t.same(await checkPassword('$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$', PASSWORD), { valid: false, rehash: false }, 'nor a truncated one')
  const common = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'common@example.com', username: 'common_user', password: 'password' } })
  isError(t, common, 400, 'Bad Request', 'This password is too common; choose another one', '"password", exactly 8 characters')
})
