import { eq } from 'drizzle-orm'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { build, countRows, isCredentials401, login, loginAs, PASSWORD, setActive, type TestUser, unknownProperty } from '../helper.js'

// Every response of this file, checked at the end for leaked passwords or hashes.
const seen: Array<{ what: string, body: string, headers: string }> = []
// Every password this file sends, old and new.
const secrets = new Set<string>([PASSWORD])

async function call (app: App, opts: InjectOptions): Promise<LightMyRequestResponse> {
  const res = await app.inject(opts)
  seen.push({ what: `${opts.method ?? 'GET'} ${String(opts.url)}`, body: res.body, headers: JSON.stringify(res.headers) })
  return res
}

const get = (app: App, url: string, headers: Record<string, string> = {}) => call(app, { method: 'GET', url, headers })
const me = (app: App, user: TestUser) => get(app, '/users/me', user.auth)
const patchMe = (app: App, headers: Record<string, string>, payload: unknown) =>
  call(app, { method: 'PATCH', url: '/users/me', headers, payload: payload as Record<string, unknown> })
const changePassword = (app: App, headers: Record<string, string>, payload: Record<string, unknown>) =>
  call(app, { method: 'PUT', url: '/users/me/password', headers, payload })
/** DELETE /users/me with the re-authenticating body (the right password unless told); `null` sends no body. */
const deleteMe = (app: App, headers: Record<string, string>, body: Record<string, unknown> | null = { password: PASSWORD }) =>
  call(app, { method: 'DELETE', url: '/users/me', headers, ...(body === null ? {} : { payload: body }) })
const refresh = (app: App, token: string) =>
  call(app, { method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: token } })
const tryLogin = (app: App, username: string, password: string) =>
  call(app, { method: 'POST', url: '/auth/token', payload: { username, password } })

const INACTIVE_403 = { statusCode: 403, error: 'Forbidden', message: 'Inactive account', code: 'INACTIVE_ACCOUNT' }
const LOGIN_THROTTLED = { statusCode: 429, error: 'Too Many Requests', message: 'Too many failed logins; try again later', code: 'LOGIN_THROTTLED' }
const WRONG_LOGIN_MESSAGE = 'Incorrect username or password'

const PRIVATE_KEYS = ['avatar_url', 'bio', 'created_at', 'email', 'email_verified', 'id', 'is_active', 'mfa', 'permissions', 'role', 'username']
const PUBLIC_KEYS = ['avatar_url', 'bio', 'created_at', 'id', 'username']
const USER_PERMISSIONS = ['comment:create', 'comment:delete_own', 'post:create', 'post:delete_own', 'post:edit_own', 'post:like', 'user:follow']

const isIsoUtc = (value: unknown) =>
  typeof value === 'string' && /Z$/.test(value) && new Date(value).toISOString() === value

/** The login throttle's 429, with Retry-After. */
function isThrottled (t: Test, res: LightMyRequestResponse, what: string) {
  t.equal(res.statusCode, 429, `${what}: 429`)
  t.same(res.json(), LOGIN_THROTTLED, `${what}: the login throttle's 429`)
  t.ok(Number(res.headers['retry-after']) > 0, `${what}: with Retry-After`)
}

/** A 400 in the one error shape, with exactly this message. */
function isBadRequest (t: Test, res: LightMyRequestResponse, message: string, what: string) {
  t.equal(res.statusCode, 400, `${what}: 400`)
  t.match(res.json(), { statusCode: 400, error: 'Bad Request', message }, `${what}: ${message}`)
  t.equal(res.json().message, message, `${what}: exactly that message`)
}

const VALIDATION = 'FST_ERR_VALIDATION'
const UNKNOWN_EMAIL = 'body has an unknown property "email"'
const USERNAME_PATTERN = 'body/username must match pattern "^[A-Za-z0-9_-]+$"'

t.test('GET /users/me', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)

  const res = await me(app, alice)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(Object.keys(body).sort(), PRIVATE_KEYS, 'exactly the fields of the private view')
  t.equal(body.id, alice.id)
  t.strictSame(body.mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, 'no second factor yet')
  t.equal(body.email, alice.email)
  t.equal(body.email_verified, false, 'an address nobody confirmed is not verified')
  t.equal(body.username, alice.username)
  t.equal(body.bio, '')
  t.equal(body.role, 'user')
  t.equal(body.is_active, true)
  t.equal(body.avatar_url, null)
  t.same([...body.permissions].sort(), USER_PERMISSIONS, 'the permissions of the role user')
  t.ok(isIsoUtc(body.created_at), 'created_at is an ISO-8601 UTC string')

  t.ok(isCredentials401(await get(app, '/users/me')), 'anonymous: the one 401')

  const inactive = await loginAs(app, 'user', { active: false })
  const inactiveMe = await me(app, inactive)
  t.equal(inactiveMe.statusCode, 200, 'an inactive user may still read their own account')
  t.equal(inactiveMe.json().is_active, false)

  const admin = await loginAs(app, 'admin')
  const adminMe = (await me(app, admin)).json()
  t.equal(adminMe.role, 'admin')
  t.ok(adminMe.permissions.includes('user:manage') && adminMe.permissions.includes('audit:read'), 'an admin has every permission')
})

t.test('PATCH /users/me', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const before = async () => (await me(app, alice)).json()

  await t.test('partial updates change only what is sent', async (t) => {
    const original = await before()
    const bio = await patchMe(app, alice.auth, { bio: 'Writes about ink.' })
    t.equal(bio.statusCode, 200)
    t.same(Object.keys(bio.json()).sort(), PRIVATE_KEYS, 'answers the private view')
    t.same(bio.json(), { ...original, bio: 'Writes about ink.' }, 'only the bio changed')

    const username = await patchMe(app, alice.auth, { username: 'alice_renamed' })
    t.equal(username.statusCode, 200)
    t.same(username.json(), { ...original, bio: 'Writes about ink.', username: 'alice_renamed' })

    // The address changes only through POST /users/me/email: here it is an unknown property.
    const email = await patchMe(app, alice.auth, { email: 'alice.new@example.com' })
    isBadRequest(t, email, UNKNOWN_EMAIL, 'an email')
    t.equal(email.json().code, VALIDATION)
    const withOthers = await patchMe(app, alice.auth, { username: 'alice_again', email: 'alice.new@example.com', bio: 'Not stored.' })
    isBadRequest(t, withOthers, UNKNOWN_EMAIL, 'an email with a username and a bio')
    t.same(await before(), { ...original, bio: 'Writes about ink.', username: 'alice_renamed' }, 'the email, username and bio are kept')

    const all = await patchMe(app, alice.auth, { username: 'alice', bio: '' })
    t.equal(all.statusCode, 200)
    t.same(all.json(), { ...original, username: 'alice', bio: '' }, 'both at once')
    t.same(await before(), all.json(), 'the change is stored')

    t.equal((await tryLogin(app, alice.email, PASSWORD)).statusCode, 200, 'the unchanged email still logs in')
    t.equal((await tryLogin(app, 'alice.new@example.com', PASSWORD)).statusCode, 401, 'the refused email does not')
    t.equal((await tryLogin(app, 'alice', PASSWORD)).statusCode, 200, 'the new username logs in')
    t.equal((await tryLogin(app, alice.username, PASSWORD)).statusCode, 401, 'the old username no longer does')
  })

  await t.test('a username taken by another user is a 409, whatever its case; an email is a 400 here', async (t) => {
    const original = await before()
    const conflicts: Array<[string, Record<string, string>]> = [
      ['same username', { username: bob.username }],
      ['username in another case', { username: bob.username.toUpperCase() }],
      ['taken username with a bio', { username: bob.username, bio: 'Not stored.' }]
    ]
    for (const [name, payload] of conflicts) {
      const res = await patchMe(app, alice.auth, payload)
      t.equal(res.statusCode, 409, `${name}: 409`)
      t.same(res.json(), { statusCode: 409, error: 'Conflict', message: 'Username already taken', code: 'USERNAME_TAKEN' }, `${name}: Username already taken`)
    }
    // Another account's address is refused like any email here: no 409 tells whether it is taken.
    const emails: Array<[string, Record<string, string>]> = [
      ['same email', { email: bob.email }],
      ['email in another case', { email: bob.email.toUpperCase() }],
      ['free username, taken email', { username: 'free_name', email: bob.email }],
      ['taken username, free email', { username: bob.username, email: 'free@example.com' }]
    ]
    for (const [name, payload] of emails) {
      const res = await patchMe(app, alice.auth, payload)
      isBadRequest(t, res, UNKNOWN_EMAIL, name)
      t.equal(res.json().code, VALIDATION, `${name}: a validation error`)
    }
    t.same(await before(), original, 'nothing changed')
    const bobNow = (await me(app, bob)).json()
    t.equal(bobNow.username, bob.username, 'the other user is untouched')
    t.equal(bobNow.email, bob.email)
  })

  await t.test('your own current username is not a conflict; even your own email is refused here', async (t) => {
    const original = await before()
    isBadRequest(t, await patchMe(app, alice.auth, { email: original.email }), UNKNOWN_EMAIL, 'your own email')
    isBadRequest(t, await patchMe(app, alice.auth, { email: original.email.toUpperCase() }), UNKNOWN_EMAIL, 'your own email in another case')
    t.same(await before(), original, 'the refusals changed nothing')
    const sameUsername = await patchMe(app, alice.auth, { username: original.username })
    t.equal(sameUsername.statusCode, 200, 'your own username')
    const recased = await patchMe(app, alice.auth, { username: 'ALICE' })
    t.equal(recased.statusCode, 200, 'your own username in another case')
    t.equal(recased.json().username, 'ALICE', 'the case you chose is kept for display')
    t.equal((await patchMe(app, alice.auth, { username: original.username })).statusCode, 200)
  })

  await t.test('unknown fields are a 400 and nothing changes', async (t) => {
    const original = await before()
    const smuggled: Array<Record<string, unknown>> = [
      { role: 'admin' },
      { is_active: false },
      { id: bob.id },
      { password: 'another fine passphrase' },
      { bio: 'smuggling', role: 'admin' },
      { bio: 'smuggling', is_active: false },
      { permissions: ['user:manage'] },
      { avatar_url: '/avatars/x.png' },
      { email_verified: true },
      { email: 'smuggled@example.com' },
      { bio: 'smuggling', email: 'smuggled@example.com' }
    ]
    for (const payload of smuggled) {
      const res = await patchMe(app, alice.auth, payload)
      isBadRequest(t, res, unknownProperty(payload, ['username', 'bio']), `unknown field ${Object.keys(payload).join('+')}`)
      t.equal(res.json().code, VALIDATION)
    }
    const proto = await call(app, {
      method: 'PATCH',
      url: '/users/me',
      headers: { ...alice.auth, 'content-type': 'application/json' },
      payload: '{"bio":"smuggling","__proto__":{"role":"admin"}}'
    })
    isBadRequest(t, proto, 'Body is not valid JSON', '__proto__ in the body')
    t.same(await before(), original, 'nothing changed: role, active flag, id and bio are as they were')
    t.equal((await tryLogin(app, original.username, PASSWORD)).statusCode, 200, 'the password is unchanged')
  })

  await t.test('bounds', async (t) => {
    const original = await before()
    const local = 'a'.repeat(64)
    const domain = `${'b'.repeat(61)}.${'c'.repeat(61)}.${'d'.repeat(61)}.com`
    t.equal(`${local}@${domain}`.length, 254)
    const bad: Array<[string, Record<string, unknown>, string]> = [
      ['username of 2 characters', { username: 'ab' }, 'body/username must NOT have fewer than 3 characters'],
      ['username of 33 characters', { username: 'u'.repeat(33) }, 'body/username must NOT have more than 32 characters'],
      ['username with a space', { username: 'bad name' }, USERNAME_PATTERN],
      ['username with a !', { username: 'bad!' }, USERNAME_PATTERN],
      ['username with a non-ASCII letter', { username: 'zoë_writes' }, USERNAME_PATTERN],
      ['empty username', { username: '' }, 'body/username must NOT have fewer than 3 characters'],
      // No email is a field of this body any more: whatever its form, it is an unknown property.
      ['invalid email', { email: 'not-an-email' }, UNKNOWN_EMAIL],
      ['email without a domain', { email: 'alice@' }, UNKNOWN_EMAIL],
      ['email of 255 characters', { email: `a${local}@${domain}` }, UNKNOWN_EMAIL],
      ['email of 254 characters', { email: `${local}@${domain}` }, UNKNOWN_EMAIL],
      ['bio of 501 characters', { bio: 'x'.repeat(501) }, 'body/bio must NOT have more than 500 characters'],
      ['bio that is not a string', { bio: 5 }, 'body/bio must be string'],
      ['username that is not a string', { username: ['alice'] }, 'body/username must be string'],
      ['null email', { email: null }, UNKNOWN_EMAIL]
    ]
    for (const [name, payload, names] of bad) {
      isBadRequest(t, await patchMe(app, alice.auth, payload), names, name)
    }
    t.same(await before(), original, 'nothing changed')

    const edges: Array<[string, Record<string, string>]> = [
      ['username of 3 characters', { username: 'a-_' }],
      ['username of 32 characters', { username: 'U'.repeat(32) }],
      ['bio of 500 characters', { bio: 'x'.repeat(500) }]
    ]
    for (const [name, payload] of edges) {
      const res = await patchMe(app, alice.auth, payload)
      t.equal(res.statusCode, 200, `${name}: accepted`)
      const [key, value] = Object.entries(payload)[0]!
      t.equal(res.json()[key], value, `${name}: stored`)
    }
    t.equal((await patchMe(app, alice.auth, { username: original.username, bio: '' })).statusCode, 200)
    t.equal((await before()).email, original.email, 'the email never changed')
  })

  await t.test('inactive users get 403 and anonymous callers the 401', async (t) => {
    const carol = await loginAs(app, 'user', { active: false })
    const res = await patchMe(app, carol.auth, { bio: 'hello' })
    t.equal(res.statusCode, 403)
    t.same(res.json(), INACTIVE_403, 'Inactive account')
    t.equal((await me(app, carol)).json().bio, '', 'nothing changed')
    t.ok(isCredentials401(await patchMe(app, {}, { bio: 'hello' })), 'anonymous: the one 401')
  })
})

t.test('PUT /users/me/password', async (t) => {
  const app = await build(t)
  const NEW_PASSWORD = 'an entirely new passphrase'
  secrets.add(NEW_PASSWORD)
  const dave = await loginAs(app)
  const second = await login(app, dave.username) // another session of the same user
  const secondAuth = { authorization: `Bearer ${second.access}` }
  const current = { current_password: PASSWORD }

  await t.test('refusals change nothing', async (t) => {
    const wrong = await changePassword(app, dave.auth, { current_password: 'not the password at all', new_password: NEW_PASSWORD })
    secrets.add('not the password at all')
    isBadRequest(t, wrong, 'Current password is incorrect', 'wrong current password')
    isBadRequest(t, await changePassword(app, dave.auth, { current_password: PASSWORD.toUpperCase(), new_password: NEW_PASSWORD }),
      'Current password is incorrect', 'current password in another case')

    const TOO_COMMON = 'This password is too common; choose another one'
    isBadRequest(t, await changePassword(app, dave.auth, { ...current, new_password: 'password123' }), TOO_COMMON, 'a common password')
    isBadRequest(t, await changePassword(app, dave.auth, { ...current, new_password: 'PASSWORD123' }), TOO_COMMON, 'a common password in another case')

    isBadRequest(t, await changePassword(app, dave.auth, { ...current, new_password: 'short12' }),
      'body/new_password must NOT have fewer than 8 characters', 'a new password of 7 characters')
    isBadRequest(t, await changePassword(app, dave.auth, { ...current, new_password: 'x'.repeat(129) }),
      'body/new_password must NOT have more than 128 characters', 'a new password of 129 characters')
    isBadRequest(t, await changePassword(app, dave.auth, { new_password: NEW_PASSWORD }),
      "body must have required property 'current_password'", 'no current password')
    isBadRequest(t, await changePassword(app, dave.auth, { ...current }),
      "body must have required property 'new_password'", 'no new password')
    isBadRequest(t, await changePassword(app, dave.auth, { ...current, new_password: NEW_PASSWORD, user_id: 1 }), 'body has an unknown property "user_id"', 'an unknown field')

    t.equal((await me(app, dave)).statusCode, 200, 'the first session still works')
    t.equal((await get(app, '/users/me', secondAuth)).statusCode, 200, 'the second session still works')
    t.equal((await tryLogin(app, dave.username, PASSWORD)).statusCode, 200, 'the old password still logs in')
    t.equal((await tryLogin(app, dave.username, NEW_PASSWORD)).statusCode, 401, 'the refused new one does not')
  })

  await t.test('inactive users get 403 and anonymous callers the 401', async (t) => {
    const erin = await loginAs(app, 'user', { active: false })
    const res = await changePassword(app, erin.auth, { ...current, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 403)
    t.same(res.json(), INACTIVE_403, 'Inactive account')
    await setActive(app, erin.id, true)
    t.equal((await tryLogin(app, erin.username, PASSWORD)).statusCode, 200, 'the password is unchanged')
    t.ok(isCredentials401(await changePassword(app, {}, { ...current, new_password: NEW_PASSWORD })), 'anonymous: the one 401')
  })

  await t.test('a change ends every session and starts a new one', async (t) => {
    const res = await changePassword(app, dave.auth, { ...current, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'no-store', 'Cache-Control: no-store')
    const pair = res.json()
    t.same(Object.keys(pair).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'], 'the /auth/token body')
    t.equal(pair.token_type, 'bearer')
    t.equal(pair.expires_in, 900)

    t.ok(isCredentials401(await me(app, dave)), 'the access token of the session that asked is dead')
    t.ok(isCredentials401(await get(app, '/users/me', secondAuth)), 'the access token of the other session is dead')
    for (const [name, token] of [['this session', dave.refresh], ['the other session', second.refresh]] as const) {
      const old = await refresh(app, token)
      t.equal(old.statusCode, 401, `the refresh token of ${name} is dead`)
      t.equal(old.json().message, 'Could not validate credentials')
    }

    const fresh = await get(app, '/users/me', { authorization: `Bearer ${pair.access_token}` })
    t.equal(fresh.statusCode, 200, 'the new access token works')
    t.equal(fresh.json().id, dave.id)
    const rotated = await refresh(app, pair.refresh_token)
    t.equal(rotated.statusCode, 200, 'the new refresh token works')

    const oldLogin = await tryLogin(app, dave.username, PASSWORD)
    t.equal(oldLogin.statusCode, 401, 'the old password no longer logs in')
    t.equal(oldLogin.json().message, WRONG_LOGIN_MESSAGE)
    t.equal((await tryLogin(app, dave.username, NEW_PASSWORD)).statusCode, 200, 'the new password logs in')

    const { users } = app.db.t
    const [row] = await app.db.q.select({ hash: users.passwordHash }).from(users).where(eq(users.id, dave.id))
    t.match(row?.hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'stored as an argon2id hash')
  })
})

t.test('DELETE /users/me', async (t) => {
  const app = await build(t)

  await t.test('deletes the account, its posts and likes, and ends its tokens at once', async (t) => {
    const frank = await loginAs(app)
    const other = await loginAs(app)
    const at = new Date().toISOString()
    const { auditLog, likes, posts, users } = app.db.t
    const [own, theirs] = await app.db.transaction((tx) => tx.q.insert(posts).values([
      { authorId: frank.id, title: 'Mine', content: 'x', slug: 'mine', createdAt: at, updatedAt: at },
      { authorId: other.id, title: 'Theirs', content: 'y', slug: 'theirs', createdAt: at, updatedAt: at }
    ]).returning({ id: posts.id })).then((rows) => rows.map((r) => r!))
    if (own === undefined || theirs === undefined) throw new Error('two posts were inserted')
    await app.db.transaction((tx) => tx.q.insert(likes).values([{ userId: frank.id, postId: theirs.id, createdAt: at }, { userId: other.id, postId: own.id, createdAt: at }]))

    const res = await deleteMe(app, frank.auth)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '', 'no body')

    t.ok(isCredentials401(await me(app, frank)), 'the access token stops working at once')
    t.ok(isCredentials401(await deleteMe(app, frank.auth)), 'a second delete with it is the 401')
    const oldRefresh = await refresh(app, frank.refresh)
    t.equal(oldRefresh.statusCode, 401, 'the refresh token stops working')
    const relogin = await tryLogin(app, frank.username, PASSWORD)
    t.equal(relogin.statusCode, 401, 'login fails afterwards')
    t.equal(relogin.json().message, WRONG_LOGIN_MESSAGE)
    t.equal((await get(app, `/users/${frank.id}`)).statusCode, 404, 'the profile is gone')

    t.equal(await countRows(app, users, eq(users.id, frank.id)), 0, 'the row is gone')
    t.same(await app.db.q.select({ id: posts.id }).from(posts), [{ id: theirs.id }], 'their posts are gone, others\' stay')
    t.same(await app.db.q.select({ userId: likes.userId }).from(likes), [], 'their likes are gone, and likes of their posts with them')
    t.equal((await app.db.q.select().from(posts).where(eq(posts.id, theirs.id)))[0]?.likeCount, 0, 'the like count follows')

    const audit = await app.db.q.select().from(auditLog).where(eq(auditLog.targetId, frank.id))
    t.equal(audit.length, 1, 'one audit entry')
    t.equal(audit[0]?.action, 'user.delete_self')
    t.equal(audit[0]?.targetType, 'user')
    t.equal(audit[0]?.targetId, frank.id)
    t.equal(audit[0]?.actorId, frank.id, 'the actor keeps the id of the deleted user')
    t.equal((await me(app, other)).statusCode, 200, 'another user is untouched')
  })

  await t.test('a wrong or missing password is a 400 and deletes nothing', async (t) => {
    const jack = await loginAs(app)
    const { auditLog, posts, users } = app.db.t
    const at = new Date().toISOString()
    await app.db.transaction((tx) => tx.q.insert(posts).values({ authorId: jack.id, title: 'Kept', content: 'x', slug: 'kept', createdAt: at, updatedAt: at }))
    const WRONG = 'not the password at all'
    secrets.add(WRONG)

    const wrong = await deleteMe(app, jack.auth, { password: WRONG })
    isBadRequest(t, wrong, 'Password is incorrect', 'a wrong password')
    t.equal(wrong.json().code, 'WRONG_PASSWORD', 'a wrong password: code WRONG_PASSWORD')
    const recased = await deleteMe(app, jack.auth, { password: PASSWORD.toUpperCase() })
    isBadRequest(t, recased, 'Password is incorrect', 'the password in another case')
    t.equal(recased.json().code, 'WRONG_PASSWORD')

    const invalid: Array<[string, Record<string, unknown> | null, string]> = [
      ['no body', null, 'body must be object'],
      ['an empty object', {}, "body must have required property 'password'"],
      ['an empty password', { password: '' }, 'body/password must NOT have fewer than 1 characters'],
      ['a password that is not a string', { password: 12345678 }, 'body/password must be string'],
      ['an unknown field', { password: PASSWORD, user_id: jack.id }, 'body has an unknown property "user_id"']
    ]
    for (const [name, body, message] of invalid) {
      const res = await deleteMe(app, jack.auth, body)
      isBadRequest(t, res, message, name)
      t.equal(res.json().code, VALIDATION, `${name}: a validation error`)
    }

    t.equal(await countRows(app, users, eq(users.id, jack.id)), 1, 'the row is still there')
    t.equal(await countRows(app, posts, eq(posts.authorId, jack.id)), 1, 'and their post')
    t.equal(await countRows(app, auditLog, eq(auditLog.targetId, jack.id)), 0, 'no audit entry for a refusal')
    t.equal((await me(app, jack)).statusCode, 200, 'the access token still works')
    t.equal((await refresh(app, jack.refresh)).statusCode, 200, 'and the refresh token')
    t.equal((await tryLogin(app, jack.username, PASSWORD)).statusCode, 200, 'the password still logs in')
  })

  await t.test('an inactive user gets 403 and keeps their account', async (t) => {
    const gina = await loginAs(app, 'user', { active: false })
    const refused = await deleteMe(app, gina.auth)
    t.equal(refused.statusCode, 403)
    t.same(refused.json(), INACTIVE_403, 'Inactive account')
    t.equal(await countRows(app, app.db.t.users, eq(app.db.t.users.id, gina.id)), 1, 'the row is still there')
    t.equal((await me(app, gina)).statusCode, 200, 'and their token still works')
    await setActive(app, gina.id, true)
    t.equal((await deleteMe(app, gina.auth)).statusCode, 204, 'once active again, they can delete it')
    t.equal(await countRows(app, app.db.t.users, eq(app.db.t.users.id, gina.id)), 0, 'the row is gone')
  })

  await t.test('the last active admin cannot delete themselves', async (t) => {
    const admin = await loginAs(app, 'admin')
    const inactiveAdmin = await loginAs(app, 'admin', { active: false })
    const refused = await deleteMe(app, admin.auth)
    t.equal(refused.statusCode, 409, 'an inactive admin does not count: 409')
    t.same(refused.json(), { statusCode: 409, error: 'Conflict', message: 'Cannot delete the last active admin', code: 'LAST_ADMIN' })
    t.equal((await me(app, admin)).statusCode, 200, 'the admin still exists and their token still works')
    t.equal(await countRows(app, app.db.t.auditLog, eq(app.db.t.auditLog.targetId, admin.id)), 0, 'no audit entry for a refusal')

    const second = await loginAs(app, 'admin')
    t.equal((await deleteMe(app, admin.auth)).statusCode, 204, 'with another active admin, an admin can delete themselves')
    t.ok(isCredentials401(await me(app, admin)), 'and their token stops working')

    const last = await deleteMe(app, second.auth)
    t.equal(last.statusCode, 409, 'the remaining active admin is now the last')
    t.equal(last.json().message, 'Cannot delete the last active admin')
    const inactive = await deleteMe(app, inactiveAdmin.auth)
    t.equal(inactive.statusCode, 403, 'an inactive admin cannot delete themselves: 403')
    t.same(inactive.json(), INACTIVE_403, 'Inactive account')
    const removed = await call(app, { method: 'DELETE', url: `/admin/users/${inactiveAdmin.id}`, headers: second.auth })
    t.equal(removed.statusCode, 204, 'an inactive admin is not the last active admin: the last active one may delete them')
    t.equal(await countRows(app, app.db.t.users, eq(app.db.t.users.id, inactiveAdmin.id)), 0, 'the inactive admin is gone')
    t.equal((await me(app, second)).statusCode, 200, 'the last active admin stays')
  })

  t.ok(isCredentials401(await deleteMe(app, {})), 'anonymous: the one 401')
})

t.test('a wrong password asked again counts towards LOGIN_FAILURE_LIMIT, with the login\'s 429', async (t) => {
  const app = await build(t, { LOGIN_FAILURE_LIMIT: '3' })
  const WRONG = 'not the password at all'
  const NEW_PASSWORD = 'an entirely new passphrase'
  const { posts, users } = app.db.t
  const hashOf = async (id: number) => (await app.db.q.select({ hash: users.passwordHash }).from(users).where(eq(users.id, id)))[0]?.hash

  await t.test('password change', async (t) => {
    const ivan = await loginAs(app)
    const hash = await hashOf(ivan.id)
    for (let i = 1; i <= 3; i++) {
      isBadRequest(t, await changePassword(app, ivan.auth, { current_password: WRONG, new_password: NEW_PASSWORD }),
        'Current password is incorrect', `wrong current password ${i} of 3`)
    }
    isThrottled(t, await changePassword(app, ivan.auth, { current_password: PASSWORD, new_password: NEW_PASSWORD }),
      'past the limit, even the right current password')
    isThrottled(t, await tryLogin(app, ivan.username, PASSWORD), 'a login to the account from the same client')
    t.equal(await hashOf(ivan.id), hash, 'the password is unchanged')
    t.equal((await me(app, ivan)).statusCode, 200, 'the session still works')
  })

  await t.test('account deletion', async (t) => {
    const judy = await loginAs(app)
    const at = new Date().toISOString()
    await app.db.transaction((tx) => tx.q.insert(posts).values({ authorId: judy.id, title: 'Kept', content: 'x', slug: 'kept', createdAt: at, updatedAt: at }))
    for (let i = 1; i <= 3; i++) {
      const res = await deleteMe(app, judy.auth, { password: WRONG })
      isBadRequest(t, res, 'Password is incorrect', `wrong password ${i} of 3`)
      t.equal(res.json().code, 'WRONG_PASSWORD')
    }
    isThrottled(t, await deleteMe(app, judy.auth), 'past the limit, even the right password')
    isThrottled(t, await tryLogin(app, judy.username, PASSWORD), 'a login to the account from the same client')
    t.equal(await countRows(app, users, eq(users.id, judy.id)), 1, 'the account is still there')
    t.equal(await countRows(app, posts, eq(posts.authorId, judy.id)), 1, 'with its post')
    t.equal((await me(app, judy)).statusCode, 200, 'the session still works')
  })

  await t.test('failed logins and wrong passwords asked again share one count', async (t) => {
    const kate = await loginAs(app)
    for (let i = 1; i <= 3; i++) t.equal((await tryLogin(app, kate.username, WRONG)).statusCode, 401, `failed login ${i} of 3`)
    isThrottled(t, await deleteMe(app, kate.auth), 'the deletion after failed logins')
    isThrottled(t, await changePassword(app, kate.auth, { current_password: PASSWORD, new_password: NEW_PASSWORD }), 'the password change after failed logins')
    t.equal(await countRows(app, users, eq(users.id, kate.id)), 1, 'the account is still there')

    const other = await loginAs(app)
    t.equal((await deleteMe(app, other.auth)).statusCode, 204, 'another account of the same client is not throttled')
  })
})

t.test('GET /users/{id}', async (t) => {
  const app = await build(t)
  const hana = await loginAs(app)
  await patchMe(app, hana.auth, { bio: 'Public bio' })

  const res = await get(app, `/users/${hana.id}`)
  t.equal(res.statusCode, 200, 'no token needed')
  const body = res.json()
  t.same(Object.keys(body).sort(), PUBLIC_KEYS, 'exactly the public fields')
  t.same({ ...body, created_at: undefined }, { id: hana.id, username: hana.username, bio: 'Public bio', avatar_url: null, created_at: undefined })
  t.ok(isIsoUtc(body.created_at))
  t.notOk(res.body.includes(hana.email), 'never the email')
  t.same((await get(app, `/users/${hana.id}`, hana.auth)).json(), { ...body, following: false }, 'with a token: the same, and whether the caller follows them')

  for (const id of ['999999', '2147483647']) {
    const missing = await get(app, `/users/${id}`)
    t.equal(missing.statusCode, 404, `${id}: 404`)
    t.same(missing.json(), { statusCode: 404, error: 'Not Found', message: 'User not found', code: 'USER_NOT_FOUND' }, `${id}: User not found`)
  }

  for (const id of ['abc', '1.5', '-1', '0', 'Infinity', '1e400', '99999999999999999999', '2147483648']) {
    const bad = await get(app, `/users/${id}`)
    t.equal(bad.statusCode, 400, `id ${id}: 400, never 404 or 500`)
    t.match(bad.json(), { statusCode: 400, error: 'Bad Request', message: /^params\/id must be /, code: VALIDATION }, `id ${id}: the message names the id`)
  }
})

t.test('no response ever carries a password or a password hash', async (t) => {
  t.ok(seen.length > 100, `${seen.length} responses checked`)
  for (const { what, body, headers } of seen) {
    const text = body + headers
    if (text.toLowerCase().includes('argon2')) t.fail(`${what} mentions argon2`)
    for (const secret of secrets) {
      if (text.includes(secret)) t.fail(`${what} contains a password`)
    }
  }
  t.pass('checked')
})
