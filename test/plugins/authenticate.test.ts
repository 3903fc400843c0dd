import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { b64url, build, CREDENTIALS_401, isCredentials401, isError, loginAs, PASSWORD, signAccess, TEST_SECRET, type TestUser } from '../helper.js'

const now = () => Math.floor(Date.now() / 1000)

function hmacToken (header: object, payload: object, alg: 'sha256' | 'sha384' | 'sha512' = 'sha256', key = TEST_SECRET) {
  const head = `${b64url(header)}.${b64url(payload)}`
  return `${head}.${createHmac(alg, key).update(head).digest('base64url')}`
}

t.test('every way a token can fail is the same 401, byte for byte', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const claims = JSON.parse(Buffer.from(alice.access.split('.')[1]!, 'base64url').toString())
  const { sub, sid } = claims
  const valid = (extra: object = {}) => ({ sub, sid, type: 'access', iat: now(), exp: now() + 600, ...extra })

  const ok = await app.inject({ url: '/users/me', headers: alice.auth })
  t.equal(ok.statusCode, 200, 'the genuine token works')

  const [h, p, s] = alice.access.split('.') as [string, string, string]
  const flipped = s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1)
  const cases: Record<string, Record<string, string>> = {
    'no header': {},
    'empty header': { authorization: '' },
    'scheme only': { authorization: 'Bearer' },
    'scheme and space': { authorization: 'Bearer ' },
    'another scheme': { authorization: `Basic ${alice.access}` },
    'token without scheme': { authorization: alice.access },
    'extra part': { authorization: `Bearer ${alice.access} extra` },
    'double space': { authorization: `Bearer  ${alice.access}` },
    'not a JWT': { authorization: 'Bearer not-a-jwt' },
    'two segments': { authorization: `Bearer ${h}.${p}` },
    'garbage segments': { authorization: 'Bearer a.b.c' },
    'tampered payload': { authorization: `Bearer ${h}.${b64url({ ...claims, sub: '999' })}.${s}` },
    'tampered signature': { authorization: `Bearer ${h}.${p}.${flipped}` },
    'stripped signature': { authorization: `Bearer ${h}.${p}.` },
    'alg none': { authorization: `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(valid())}.` },
    'alg None': { authorization: `Bearer ${b64url({ alg: 'None', typ: 'JWT' })}.${b64url(valid())}.` },
    'alg NONE': { authorization: `Bearer ${b64url({ alg: 'NONE', typ: 'JWT' })}.${b64url(valid())}.` },
    'HS512 with the right secret': { authorization: `Bearer ${hmacToken({ alg: 'HS512', typ: 'JWT' }, valid(), 'sha512')}` },
    'HS384 with the right secret': { authorization: `Bearer ${hmacToken({ alg: 'HS384', typ: 'JWT' }, valid(), 'sha384')}` },
    'RS256 header over an HMAC signature': { authorization: `Bearer ${hmacToken({ alg: 'RS256', typ: 'JWT' }, valid())}` },
    'signed with another secret': { authorization: `Bearer ${hmacToken({ alg: 'HS256', typ: 'JWT' }, valid(), 'sha256', 'another-secret-that-is-also-long-enough!')}` },
    'expired': { authorization: `Bearer ${signAccess(valid({ iat: now() - 1000, exp: now() - 10 }))}` },
    'no exp': { authorization: `Bearer ${hmacToken({ alg: 'HS256', typ: 'JWT' }, { sub, sid, type: 'access', iat: now() })}` },
    'not yet valid (nbf)': { authorization: `Bearer ${signAccess(valid({ nbf: now() + 3600 }))}` },
    'refresh type': { authorization: `Bearer ${signAccess(valid({ type: 'refresh' }))}` },
    'no type': { authorization: `Bearer ${hmacToken({ alg: 'HS256', typ: 'JWT' }, { sub, sid, iat: now(), exp: now() + 600 })}` },
    'the real refresh token': { authorization: `Bearer ${alice.refresh}` },
    'unknown user': { authorization: `Bearer ${signAccess(valid({ sub: '424242' }))}` },
    'numeric sub': { authorization: `Bearer ${signAccess(valid({ sub: Number(sub) }))}` },
    'non-numeric sub': { authorization: `Bearer ${signAccess(valid({ sub: '1 OR 1=1' }))}` },
    'unknown session': { authorization: `Bearer ${signAccess(valid({ sid: 'not-a-session' }))}` },
    'session of another user': { authorization: `Bearer ${signAccess(valid({ sub: '999' }))}` },
    'no session claim': { authorization: `Bearer ${hmacToken({ alg: 'HS256', typ: 'JWT' }, { sub, type: 'access', iat: now(), exp: now() + 600 })}` },
    'unknown crit header': { authorization: `Bearer ${hmacToken({ alg: 'HS256', typ: 'JWT', crit: ['x-inkwell'], 'x-inkwell': 1 }, valid())}` },
    'array payload': { authorization: `Bearer ${hmacToken({ alg: 'HS256', typ: 'JWT' }, ['access'])}` },
    'string payload': { authorization: `Bearer ${b64url({ alg: 'HS256' })}.${b64url('"access"')}.${createHmac('sha256', TEST_SECRET).update(`${b64url({ alg: 'HS256' })}.${b64url('"access"')}`).digest('base64url')}` }
  }

  for (const [name, headers] of Object.entries(cases)) {
    const res = await app.inject({ url: '/users/me', headers })
    if (!t.ok(isCredentials401(res), `${name}: the one 401`)) t.comment(res.statusCode, res.body)
  }

  const inQuery = await app.inject({ url: `/users/me?access_token=${alice.access}` })
  t.ok(isCredentials401(inQuery), 'a token in the query string counts as missing')

  const lowerScheme = await app.inject({ url: '/users/me', headers: { authorization: `bearer ${alice.access}` } })
  t.equal(lowerScheme.statusCode, 200, 'the scheme is case-insensitive')
  const upperScheme = await app.inject({ url: '/users/me', headers: { authorization: `BEARER ${alice.access}` } })
  t.equal(upperScheme.statusCode, 200, 'in any case')
  t.same(JSON.parse(inQuery.body), CREDENTIALS_401)
})

t.test('a token whose header carries jwk, jku, x5u or kid is judged by the server key alone', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const claims = JSON.parse(Buffer.from(alice.access.split('.')[1]!, 'base64url').toString())
  const attackerKey = 'attacker-chosen-secret-of-enough-length!!'
  // A key server the attacker points at: the app must never fetch from it.
  let fetched = 0
  const keyServer = createServer((_req, res) => { fetched++; res.end(JSON.stringify({ keys: [{ kty: 'oct', k: b64url(attackerKey) }] })) })
  await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => keyServer.close(resolve)))
  const keyUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`
  for (const extra of [
    { jwk: { kty: 'oct', k: b64url(attackerKey) } },
    { jku: `${keyUrl}/keys.json` },
    { x5u: `${keyUrl}/cert.pem` },
    { kid: '../../../../dev/null' },
    { kid: keyUrl, jku: `${keyUrl}/keys.json`, x5c: ['MIIB'] }
  ]) {
    const token = hmacToken({ alg: 'HS256', typ: 'JWT', ...extra }, claims, 'sha256', attackerKey)
    const res = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })
    t.ok(isCredentials401(res), `${Object.keys(extra).join('+')}: refused`)
  }
  t.equal(fetched, 0, 'no request was made to the URLs in the token headers')
})

t.test('the user is read from the database on every request', async (t) => {
  const app = await build(t)

  await t.test('a deleted user is refused at once', async (t) => {
    const bob = await loginAs(app)
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth, payload: { password: PASSWORD } })).statusCode, 204)
    t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: bob.auth })))
  })

  await t.test('a deactivated user still authenticates but gets 403 on active-user routes', async (t) => {
    const carol = await loginAs(app, 'user', { active: false })
    const me = await app.inject({ url: '/users/me', headers: carol.auth })
    t.equal(me.statusCode, 200)
    t.equal(me.json().is_active, false)
    const patch = await app.inject({ method: 'PATCH', url: '/users/me', headers: carol.auth, payload: { bio: 'hi' } })
    t.equal(patch.statusCode, 403)
    t.same(patch.json(), { statusCode: 403, error: 'Forbidden', message: 'Inactive account', code: 'INACTIVE_ACCOUNT' })
  })

  await t.test('a role change counts on the next request, whatever the token says', async (t) => {
    const dave = await loginAs(app)
    t.equal((await app.inject({ url: '/users/me', headers: dave.auth })).json().role, 'user')
    const { setRole } = await import('../helper.js')
    await setRole(app, dave.id, 'moderator')
    const me = await app.inject({ url: '/users/me', headers: dave.auth })
    t.equal(me.json().role, 'moderator')
    t.ok(me.json().permissions.includes('post:edit_any'))
  })
})

t.test('guards as preHandlers: one line per route, or once for a prefix', async (t) => {
  const app = await build(t)
  app.get('/t/optional', { preHandler: app.authenticateOptional }, async (request) => ({ user: request.user?.username ?? null }))
  app.get('/t/mods', { preHandler: app.requireRole('moderator', 'admin') }, async () => ({ ok: true }))
  app.get('/t/edit-any', { preHandler: app.requirePermission('post:edit_any') }, async () => ({ ok: true }))
  app.get('/t/unguarded', async (request) => {
    const { userOf } = await import('../../plugins/auth.js')
    return { id: userOf(request).id }
  })
  await app.register(async (admin) => {
    admin.protect(admin.requireRole('admin'))
    // A route with no hook of its own is still guarded by the prefix.
    admin.get('/anything', async () => ({ ok: true }))
    admin.get('/with-own-hook', { preHandler: admin.authenticate }, async () => ({ ok: true }))
  }, { prefix: '/t/admin' })

  const user = await loginAs(app, 'user')
  const mod = await loginAs(app, 'moderator')
  const admin = await loginAs(app, 'admin')
  const inactiveAdmin = await loginAs(app, 'admin', { active: false })

  const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers })

  t.same((await get('/t/optional')).json(), { user: null }, 'optional: anonymous')
  t.same((await get('/t/optional', user.auth)).json(), { user: user.username }, 'optional: the caller')
  t.same((await get('/t/optional', { authorization: 'Bearer junk' })).json(), { user: null }, 'optional: a bad token is anonymous')

  t.ok(isCredentials401(await get('/t/mods')), 'role: anonymous is 401')
  const userOnMods = await get('/t/mods', user.auth)
  t.equal(userOnMods.statusCode, 403, 'role: a user is 403')
  t.equal(userOnMods.json().message, 'Requires role: moderator or admin')
  t.equal((await get('/t/mods', mod.auth)).statusCode, 200, 'role: a moderator passes')
  t.equal((await get('/t/mods', admin.auth)).statusCode, 200, 'role: an admin passes')
  t.equal((await get('/t/mods', inactiveAdmin.auth)).json().message, 'Inactive account', 'role: inactive comes first')

  t.equal((await get('/t/edit-any', user.auth)).statusCode, 403, 'permission: a user lacks post:edit_any')
  t.equal((await get('/t/edit-any', user.auth)).json().message, 'Requires permission: post:edit_any')
  t.equal((await get('/t/edit-any', mod.auth)).statusCode, 200, 'permission: a moderator has it')

  t.ok(isCredentials401(await get('/t/admin/anything')), 'prefix: anonymous is 401')
  t.equal((await get('/t/admin/anything', user.auth)).statusCode, 403, 'prefix: a user is 403')
  t.equal((await get('/t/admin/anything', mod.auth)).statusCode, 403, 'prefix: a moderator is 403')
  t.equal((await get('/t/admin/anything', inactiveAdmin.auth)).json().message, 'Inactive account')
  t.equal((await get('/t/admin/anything', admin.auth)).statusCode, 200, 'prefix: an admin passes')
  t.equal((await get('/t/admin/with-own-hook', user.auth)).statusCode, 403, 'prefix guard runs before the route\'s own')

  t.ok(isCredentials401(await get('/t/unguarded')), 'a route that forgot its guard fails closed with the 401')
})

t.test('a token issued after a revocation works at once, even within the same second', async (t) => {
  const app = await build(t)
  const erin = await loginAs(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: erin.auth })).statusCode, 204)
  const res = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: erin.username, password: erin.password } })
  const fresh = res.json().access_token
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${fresh}` } })).statusCode, 200)
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: erin.auth })), 'the old one is dead')
})

t.test('the access token carries the contract claims, signed HS256 with the UTF-8 secret', async (t) => {
  const app = await build(t, { ACCESS_TOKEN_TTL: '120' })
  const frank = await loginAs(app)
  const [h, p, s] = frank.access.split('.') as [string, string, string]
  const header = JSON.parse(Buffer.from(h, 'base64url').toString())
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  t.equal(header.alg, 'HS256')
  t.equal(payload.sub, String(frank.id))
  t.equal(payload.type, 'access')
  t.equal(payload.exp - payload.iat, 120, 'ACCESS_TOKEN_TTL sets the lifetime')
  t.equal(createHmac('sha256', Buffer.from(TEST_SECRET, 'utf8')).update(`${h}.${p}`).digest('base64url'), s,
    'HMAC-SHA256 over the UTF-8 bytes of JWT_SECRET reproduces the signature')
})

t.test('the user id in an access token is canonical decimal: any other spelling of the right id is refused', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const { sid } = JSON.parse(Buffer.from(user.access.split('.')[1]!, 'base64url').toString())
  const access = (sub: string) => ({ authorization: `Bearer ${signAccess({ sub, sid, type: 'access', iat: now(), exp: now() + 600 })}` })
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
    isError(t, res, 403, message, what)
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

t.test('an access token whose sid is not a string is the one 401, never a 500', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  for (const sid of [true, 12345, {}, ['x'], null]) {
    const token = signAccess({ sub: String(user.id), sid, type: 'access', iat: now(), exp: now() + 600 })
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
  isError(t, await app.inject({ url: '/t/strict', headers: user.auth }), 403, 'Requires role: admin', 'the route\'s own, stricter guard')
  t.same((await app.inject({ url: '/t/strict', headers: admin.auth })).json(), { ok: true }, 'an admin passes both')
  t.ok(isCredentials401(await app.inject({ url: '/t/traced' })), 'the prefix guard first: anonymous never reaches the route\'s own hook')
  t.same(order, [], 'which did not run')
  t.same((await app.inject({ url: '/t/traced', headers: user.auth })).json(), { order: ['own'] }, 'with a token, it runs')
})
