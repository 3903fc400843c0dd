// A user's sessions: listed with where they came from, and ended one by one as a logout would.
import { createHmac } from 'node:crypto'
import { eq, isNotNull } from 'drizzle-orm'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import type { App } from '../../src/app.js'
import { build, countRows, isCredentials401, isError, loginAs, PASSWORD, TEST_SECRET, type TestUser } from '../helper.js'

const loginFrom = async (app: App, user: TestUser, userAgent: string) => {
  const res = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'user-agent': userAgent }, payload: { username: user.username, password: PASSWORD } })
  if (res.statusCode !== 200) throw new Error(`login: ${res.statusCode}`)
  const body = res.json()
  return { access: body.access_token as string, refresh: body.refresh_token as string, auth: { authorization: `Bearer ${body.access_token}` } }
}
const list = async (app: App, auth: Record<string, string>, query = '') => app.inject({ url: `/users/me/sessions${query}`, headers: auth })
const end = (app: App, auth: Record<string, string>, id: string) => app.inject({ method: 'DELETE', url: `/users/me/sessions/${id}`, headers: auth })
const refresh = (app: App, token: string) => app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: token } })
const loginWith = (app: App, user: TestUser, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/token', headers, payload: { username: user.username, password: PASSWORD } })
const refreshWith = (app: App, token: string) =>
  app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: token } })
const sessionsOf = async (app: App, auth: Record<string, string>) => (await app.inject({ url: '/users/me/sessions', headers: auth })).json()
const unix = () => Math.floor(Date.now() / 1000)

t.test('GET /users/me/sessions lists the caller\'s open sessions, newest first, with `current`', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const other = await loginAs(app)
  // Session times are kept in whole seconds: a second apart, the order is defined.
  const aSecond = () => new Promise((resolve) => setTimeout(resolve, 1050))
  await aSecond()
  const phone = await loginFrom(app, user, 'Phone/1.0')
  await aSecond()
  const laptop = await loginFrom(app, user, 'Laptop/2.0')

  const res = await list(app, laptop.auth)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store', 'a private view is not cached')
  const page = res.json()
  t.match(page, { total: 3, skip: 0, limit: 20, has_more: false }, 'the list shape')
  t.same(page.items.map((s: { user_agent: string | null }) => s.user_agent), ['Laptop/2.0', 'Phone/1.0', 'lightMyRequest'], 'newest first, each with its User-Agent (inject sends its own)')
  t.same(page.items.map((s: { current: boolean }) => s.current), [true, false, false], '`current` marks the calling token\'s session')
  t.same(Object.keys(page.items[0]).sort(), ['amr', 'created_at', 'current', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent'], 'exactly the documented fields')
  t.same(page.items.map((s: { amr: string[] }) => s.amr), [['pwd'], ['pwd'], ['pwd']], 'each opened with a password alone (amr)')
  t.ok(page.items.every((s: { ip: string }) => s.ip === '127.0.0.1'), 'the client address at login')
  for (const s of page.items as Array<{ id: string }>) {
    t.notOk([user.access, user.refresh, phone.access, phone.refresh, laptop.access, laptop.refresh].some((tok) => tok.includes(s.id) && s.id.length > 40), 'the id is no token')
  }
  t.same((await list(app, phone.auth)).json().items.map((s: { current: boolean }) => s.current), [false, true, false], 'from the phone, the phone\'s is current')
  t.equal((await list(app, other.auth)).json().total, 1, 'another user sees only their own')
  t.match((await list(app, laptop.auth, '?limit=1&skip=1')).json(), { total: 3, skip: 1, limit: 1, has_more: true }, 'paginated')
  isError(t, await list(app, laptop.auth, '?limit=0'), 400, 'querystring/limit must be >= 1', 'limit bounds')
  t.ok(isCredentials401(await app.inject({ url: '/users/me/sessions' })), 'anonymous: the one 401')

  // last_used_at moves at a refresh (not on every request).
  const before = page.items[1]
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await app.inject({ url: '/users/me', headers: phone.auth })).statusCode, 200)
  t.equal((await list(app, laptop.auth)).json().items[1].last_used_at, before.last_used_at, 'a request does not move last_used_at')
  const rotated = await refresh(app, phone.refresh)
  t.equal(rotated.statusCode, 200)
  const after = (await list(app, laptop.auth)).json().items.find((s: { id: string }) => s.id === before.id)
  t.ok(after.last_used_at > before.last_used_at, `a refresh moves it (${before.last_used_at} → ${after.last_used_at})`)
  t.equal(after.created_at, before.created_at, 'created_at stays')
})

t.test('DELETE /users/me/sessions/{id} ends that session as a logout would', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const other = await loginAs(app)
  const phone = await loginFrom(app, user, 'Phone/1.0')
  const items = (await list(app, user.auth)).json().items as Array<{ id: string, user_agent: string | null }>
  const phoneSession = items.find((s) => s.user_agent === 'Phone/1.0')!
  const othersSession = (await list(app, other.auth)).json().items[0].id as string

  isError(t, await end(app, user.auth, othersSession), 404, 'Session not found', 'another user\'s session: 404')
  t.equal((await app.inject({ url: '/users/me', headers: other.auth })).statusCode, 200, 'and it lives on')
  isError(t, await end(app, user.auth, 'no-such-session'), 404, 'Session not found', 'an unknown id: 404')
  t.equal((await end(app, user.auth, 'bad%20id')).statusCode, 400, 'an id that cannot be a session id: 400')
  t.ok(isCredentials401(await end(app, {}, phoneSession.id)), 'anonymous: the one 401')

  const res = await end(app, user.auth, phoneSession.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: phone.auth })), 'its access token dies at once')
  t.ok(isCredentials401(await refresh(app, phone.refresh)), 'and its refresh token')
  t.equal((await app.inject({ url: '/users/me', headers: user.auth })).statusCode, 200, 'the caller\'s own session lives on')
  t.same((await list(app, user.auth)).json().items.map((s: { id: string }) => s.id).includes(phoneSession.id), false, 'it is no longer listed')
  isError(t, await end(app, user.auth, phoneSession.id), 404, 'Session not found', 'ending it again: 404')

  const own = (await list(app, user.auth)).json().items[0].id as string
  t.equal((await end(app, user.auth, own)).statusCode, 204, 'a user may end the session they call from')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: user.auth })), 'and the calling token dies with it')
})

t.test('deactivation by an admin ends every session; the owner may log in again and sees is_active false', async (t) => {
  const app = await build(t)
  const admin = await loginAs(app, 'admin')
  const user = await loginAs(app)
  const second = await loginFrom(app, user, 'Tablet/3.0')
  const res = await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: admin.auth, payload: { is_active: false } })
  t.equal(res.statusCode, 200)
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: user.auth })), 'the first session\'s token dies')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: second.auth })), 'and the second\'s')
  t.ok(isCredentials401(await refresh(app, second.refresh)), 'refresh tokens too')
  const again = await loginFrom(app, user, 'Tablet/3.0')
  t.equal((await app.inject({ url: '/users/me', headers: again.auth })).json().is_active, false, 'a new login sees is_active false')
  isError(t, await app.inject({ method: 'POST', url: '/posts', headers: again.auth, payload: { title: 'x', content: 'y' } }), 403, 'Inactive account', 'and cannot write')
})

t.test('logout with an already-used refresh token of a live session ends that session', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const rotated = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.refresh } })
  t.equal(rotated.statusCode, 200)
  const next = rotated.json()
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.access_token}` } })).statusCode, 200, 'the session lives')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: user.refresh } })).statusCode, 204, 'logout with the spent token')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.access_token}` } })), 'the session\'s newest access token dies')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: next.refresh_token } })).statusCode, 401, 'and its newest refresh token')
})

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
  isError(t, await app.inject({ method: 'DELETE', url: `/users/me/sessions/${first.id}`, headers: auth }), 404, 'Session not found', 'nor can it be ended')
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
