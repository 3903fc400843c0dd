import { desc, eq } from 'drizzle-orm'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import tap from 'tap'
import type { App } from '../../src/app.js'
import { b64url, build, countRows, CREDENTIALS_401, isCredentials401, isError, login, loginAs, PASSWORD, signAccess } from '../helper.js'

type T = Parameters<Parameters<typeof tap.test>[0]>[0]
type Res = LightMyRequestResponse

// Every body any request in this file received, scanned at the end for passwords and hashes.
const bodies: string[] = []
// Every password that belongs to an account in this file.
const passwords = new Set<string>([PASSWORD])

async function call (app: App, opts: InjectOptions): Promise<Res> {
  const res = await app.inject(opts)
  bodies.push(res.body)
  return res
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

function token (app: App, payload: Record<string, unknown>, extra: Partial<InjectOptions> = {}) {
  return call(app, { method: 'POST', url: '/auth/token', payload, ...extra })
}

function tokenForm (app: App, params: Record<string, string>, extra: Partial<InjectOptions> = {}) {
  return call(app, {
    method: 'POST',
    url: '/auth/token',
    payload: new URLSearchParams(params).toString(),
    ...extra,
    headers: { ...FORM, ...extra.headers }
  })
}

const refresh = (app: App, refreshToken: string) => token(app, { grant_type: 'refresh_token', refresh_token: refreshToken })
const logout = (app: App, refreshToken: string) => call(app, { method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
const logoutAll = (app: App, access?: string) => call(app, {
  method: 'POST', url: '/auth/logout-all', headers: access === undefined ? {} : { authorization: `Bearer ${access}` }
})
const me = (app: App, access: string) => call(app, { url: '/users/me', headers: { authorization: `Bearer ${access}` } })
const register = (app: App, payload: Record<string, unknown>, extra: Partial<InjectOptions> = {}) =>
  call(app, { method: 'POST', url: '/auth/register', payload, ...extra })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString())

const INVALID_LOGIN = { statusCode: 401, error: 'Unauthorized', message: 'Incorrect username or password', code: 'INVALID_LOGIN' }
const LOGIN_THROTTLED = { statusCode: 429, error: 'Too Many Requests', message: 'Too many failed logins; try again later', code: 'LOGIN_THROTTLED' }
const VALIDATION = 'FST_ERR_VALIDATION'
const PRIVATE_VIEW_KEYS = ['avatar_url', 'bio', 'created_at', 'email', 'email_verified', 'id', 'is_active', 'mfa', 'permissions', 'role', 'username']
const USER_PERMISSIONS = ['comment:create', 'comment:delete_own', 'post:create', 'post:delete_own', 'post:edit_own', 'post:like', 'user:follow']
const TOKEN_PAIR_KEYS = ['access_token', 'expires_in', 'refresh_token', 'token_type']

function isTokenPair (t: T, res: Res, ttl: number, name: string) {
  t.equal(res.statusCode, 200, `${name}: 200`)
  if (res.statusCode !== 200) return t.comment(res.body)
  t.equal(res.headers['cache-control'], 'no-store', `${name}: Cache-Control: no-store`)
  const body = res.json()
  t.strictSame(Object.keys(body).sort(), TOKEN_PAIR_KEYS, `${name}: exactly the token pair fields`)
  t.equal(body.token_type, 'bearer', `${name}: token_type bearer`)
  t.equal(body.expires_in, ttl, `${name}: expires_in is ACCESS_TOKEN_TTL`)
  t.match(body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `${name}: the access token is a JWT`)
  t.match(body.refresh_token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `${name}: the refresh token is a JWT`)
}

function isRetryAfter (t: T, res: Res, max: number, name: string) {
  const value = res.headers['retry-after']
  t.ok(typeof value === 'string' && /^[1-9][0-9]*$/.test(value) && Number(value) <= max,
    `${name}: Retry-After is a positive integer of seconds (at most ${max})`, { found: value })
}

function userCount (app: App, email: string): Promise<number> {
  return countRows(app, app.db.t.users, eq(app.db.t.users.email, email))
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

tap.test('POST /auth/register', async (t) => {
  const app = await build(t)

  await t.test('201 with the private view, exactly its fields', async (t) => {
    const password = 'register me properly 42'
    passwords.add(password)
    const res = await register(app, { email: 'writer@example.com', username: 'Writer_One', password })
    t.equal(res.statusCode, 201)
    t.match(res.headers['content-type'], /^application\/json/)
    const body = res.json()
    t.strictSame(Object.keys(body).sort(), PRIVATE_VIEW_KEYS, 'exactly the private view fields')
    t.ok(Number.isInteger(body.id) && body.id > 0, 'an integer id')
    t.equal(body.email, 'writer@example.com')
    t.equal(body.email_verified, false, 'a registered address starts unverified')
    t.equal(body.username, 'Writer_One')
    t.equal(body.bio, '')
    t.equal(body.role, 'user')
    t.equal(body.is_active, true)
    t.equal(body.avatar_url, null)
    t.strictSame([...body.permissions].sort(), USER_PERMISSIONS, 'the user role\'s permissions')
    t.match(body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'created_at is ISO-8601 UTC')
    t.notOk(res.body.includes(password), 'the password is not echoed')
    t.notOk(res.body.includes('$argon2'), 'no hash in the body')

    const tokens = await login(app, 'Writer_One', password)
    const mine = await me(app, tokens.access)
    t.strictSame(mine.json(), body, 'GET /users/me shows the same private view')
  })

  await t.test('the stored hash is argon2id with m=19456, t=2, p=1', async (t) => {
    const { users } = app.db.t
    const [row] = await app.db.q.select({ hash: users.passwordHash }).from(users).where(eq(users.email, 'writer@example.com'))
    t.ok(row, 'the user row exists')
    t.ok(row?.hash.startsWith('$argon2id$v=19$m=19456,t=2,p=1$'), 'argon2id with the OWASP parameters', { found: row?.hash.slice(0, 32) })
    t.notOk(row?.hash.includes('register me properly 42'), 'not the plain password')
  })

  await t.test('duplicates are 409, regardless of case', async (t) => {
    const password = 'another decent passphrase'
    const email = await register(app, { email: 'WRITER@Example.COM', username: 'someone_else', password })
    isError(t, email, 409, 'Email already registered', 'same email in another case → 409')
    const username = await register(app, { email: 'other@example.com', username: 'writer_ONE', password })
    isError(t, username, 409, 'Username already taken', 'same username in another case → 409')
    t.equal(await userCount(app, 'other@example.com'), 0, 'the conflicting registration created nothing')
  })

  await t.test('unknown fields are a 400 and create no user', async (t) => {
    const base = { username: 'smuggler', password: 'smuggle this passphrase' }
    const smuggled: Record<string, unknown> = {
      role: 'admin', is_active: false, id: 99, author_id: 1, permissions: ['user:manage'], email_verified: true
    }
    for (const [field, value] of Object.entries(smuggled)) {
      const email = `smuggle-${field}@example.com`
      const res = await register(app, { ...base, email, [field]: value })
      isError(t, res, 400, `body has an unknown property "${field}"`, `${field} → 400`, VALIDATION)
      t.equal(await userCount(app, email), 0, `${field}: no user created`)
    }
    // Written as raw JSON: an object literal's __proto__ would set the prototype instead of a key.
    const poisoned: Record<string, string> = {
      '__proto__ as a JSON key': '"__proto__":{"role":"admin"}',
      'constructor.prototype as a JSON key': '"constructor":{"prototype":{"role":"admin"}}'
    }
    for (const [name, extra] of Object.entries(poisoned)) {
      const res = await register(app, {}, {
        headers: { 'content-type': 'application/json' },
        payload: `{"email":"proto@example.com","username":"protouser","password":"smuggle this passphrase",${extra}}`
      })
      isError(t, res, 400, 'Body is not valid JSON', `${name} → 400`, 'FST_ERR_CTP_INVALID_JSON_BODY')
      t.equal(await userCount(app, 'proto@example.com'), 0, `${name}: no user created`)
    }
    const anyone = await countRows(app, app.db.t.users, eq(app.db.t.users.role, 'admin'))
    t.equal(anyone, 0, 'nobody became an admin')
  })

  await t.test('bounds and formats', async (t) => {
    const ok = { email: 'bounds@example.com', username: 'bounds', password: 'within the bounds ok' }
    const cases: [string, Record<string, unknown>, string][] = [
      ['username of 2 characters', { username: 'ab' }, 'body/username must NOT have fewer than 3 characters'],
      ['username of 33 characters', { username: 'a'.repeat(33) }, 'body/username must NOT have more than 32 characters'],
      ['username with a space', { username: 'bad name' }, 'body/username must match pattern "^[A-Za-z0-9_-]+$"'],
      ['username with punctuation', { username: 'bad!name' }, 'body/username must match pattern "^[A-Za-z0-9_-]+$"'],
      ['username with a non-ASCII letter', { username: 'bådname' }, 'body/username must match pattern "^[A-Za-z0-9_-]+$"'],
      ['username as a number', { username: 12345 }, 'body/username must be string'],
      ['invalid email', { email: 'not-an-email' }, 'body/email must match format "email"'],
      ['email without a domain', { email: 'someone@' }, 'body/email must match format "email"'],
      ['email of 255 characters', { email: `${'a'.repeat(64)}@${`${'b'.repeat(60)}.`.repeat(3)}${'c'.repeat(7)}` }, 'body/email must NOT have more than 254 characters'],
      ['password of 7 characters', { password: 'Xq7#mZ2' }, 'body/password must NOT have fewer than 8 characters'],
      ['password of 129 characters', { password: 'p'.repeat(129) }, 'body/password must NOT have more than 128 characters'],
      ['missing password', { password: undefined }, 'body must have required property \'password\''],
      ['missing email', { email: undefined }, 'body must have required property \'email\'']
    ]
    for (const [name, change, message] of cases) {
      const payload = JSON.parse(JSON.stringify({ ...ok, ...change }))
      isError(t, await register(app, payload), 400, message, `${name} → 400`, VALIDATION)
    }
    for (const common of ['password123', 'iloveyou12', 'PASSWORD123']) {
      isError(t, await register(app, { ...ok, password: common }), 400, 'This password is too common; choose another one', `common password ${common} → 400`)
    }
    t.equal(await userCount(app, ok.email), 0, 'none of them created a user')

    // The edges that must pass.
    const email254 = `${'a'.repeat(64)}@${`${'b'.repeat(60)}.`.repeat(3)}${'c'.repeat(6)}`
    t.equal(email254.length, 254)
    const edges: [string, Record<string, string>][] = [
      ['username of 3, password of 8', { email: 'edge1@example.com', username: 'abc', password: 'Xq7#mZ2!' }],
      ['username of 32, password of 128', { email: 'edge2@example.com', username: 'z'.repeat(32), password: 'Long pass '.repeat(12) + 'Longpass' }],
      ['email of 254', { email: email254, username: 'edge_3', password: 'edge of the email' }]
    ]
    t.equal(edges[1]?.[1].password?.length, 128)
    for (const [name, payload] of edges) {
      const res = await register(app, payload)
      t.equal(res.statusCode, 201, `${name} → 201`)
      passwords.add(payload.password as string)
    }
  })

  await t.test('a password with spaces and Unicode is kept, prepared as RFC 8265 OpaqueString (NFC), never trimmed', async (t) => {
    const nfc = '  Crème brûlée für 二人 🍮 ok  '.normalize('NFC')
    const nfd = nfc.normalize('NFD')
    t.not(nfc, nfd, 'the NFC and NFD spellings differ')
    passwords.add(nfc)
    const res = await register(app, { email: 'unicode@example.com', username: 'unicode', password: nfc })
    t.equal(res.statusCode, 201)
    isTokenPair(t, await token(app, { username: 'unicode', password: nfc }), 900, 'the exact password (JSON)')
    isTokenPair(t, await tokenForm(app, { username: 'unicode', password: nfc }), 900, 'the exact password (form)')
    // OpaqueString: the NFD spelling is prepared to the same NFC string, and a non-ASCII space becomes U+0020.
    isTokenPair(t, await token(app, { username: 'unicode', password: nfd }), 900, 'the NFD spelling is the same password')
    isTokenPair(t, await token(app, { username: 'unicode', password: nfc.replaceAll(' ', '\u00a0') }), 900, 'no-break spaces are spaces')
    isError(t, await token(app, { username: 'unicode', password: nfc.replace('è', 'e') }), 401, INVALID_LOGIN.message, 'another letter does not log in', INVALID_LOGIN.code)
    isError(t, await token(app, { username: 'unicode', password: nfc.trim() }), 401, INVALID_LOGIN.message, 'the trimmed password does not log in', INVALID_LOGIN.code)
  })
})

tap.test('POST /auth/token with the password grant', async (t) => {
  const app = await build(t, { ACCESS_TOKEN_TTL: '300' })
  const alice = await loginAs(app)
  const wrong = 'not the right passphrase'

  await t.test('JSON and form-urlencoded, by username or email, in any case', async (t) => {
    isTokenPair(t, await token(app, { grant_type: 'password', username: alice.username, password: PASSWORD }), 300, 'JSON by username')
    isTokenPair(t, await tokenForm(app, { grant_type: 'password', username: alice.username, password: PASSWORD }), 300, 'form by username')
    isTokenPair(t, await token(app, { username: alice.email, password: PASSWORD }), 300, 'JSON by email')
    isTokenPair(t, await tokenForm(app, { username: alice.email, password: PASSWORD }), 300, 'form by email')
    isTokenPair(t, await token(app, { username: alice.username.toUpperCase(), password: PASSWORD }), 300, 'username in upper case')
    isTokenPair(t, await tokenForm(app, { username: alice.email.toUpperCase(), password: PASSWORD }), 300, 'email in upper case')
    const res = await token(app, { username: alice.username, password: PASSWORD })
    const body = res.json()
    const mine = await me(app, body.access_token)
    t.equal(mine.statusCode, 200, 'the access token works')
    t.equal(mine.json().id, alice.id, 'for the right user')
    const claims = claimsOf(body.access_token)
    t.equal(claims.exp - claims.iat, 300, 'the access token lives ACCESS_TOKEN_TTL seconds')
  })

  await t.test('grant_type defaults to password; unknown parameters and Basic Og== are ignored', async (t) => {
    isTokenPair(t, await token(app, { username: alice.username, password: PASSWORD }), 300, 'JSON without grant_type')
    isTokenPair(t, await tokenForm(app, { username: alice.username, password: PASSWORD }), 300, 'form without grant_type')
    const extras = { scope: 'admin user:manage', client_id: 'swagger', client_secret: 'secret', foo: 'bar' }
    isTokenPair(t, await token(app, { username: alice.username, password: PASSWORD, ...extras }), 300, 'JSON with scope, client_id, client_secret, foo')
    isTokenPair(t, await tokenForm(app, { grant_type: 'password', username: alice.username, password: PASSWORD, ...extras }), 300, 'form with scope, client_id, client_secret, foo')
    isTokenPair(t, await token(app, { username: alice.username, password: PASSWORD, role: 'admin', sub: '1', nested: { a: [1] } }), 300, 'JSON with other junk')
    const swagger = await tokenForm(app, { grant_type: 'password', username: alice.username, password: PASSWORD, scope: '' },
      { headers: { authorization: 'Basic Og==' } })
    isTokenPair(t, swagger, 300, 'as Swagger UI sends it, with Authorization: Basic Og==')
    const scoped = await token(app, { username: alice.username, password: PASSWORD, scope: 'admin' })
    const mine = await me(app, scoped.json().access_token)
    t.equal(mine.json().role, 'user', 'a requested scope grants nothing')
  })

  await t.test('another grant_type or missing parameters → 400', async (t) => {
    for (const grant of ['client_credentials', 'authorization_code', 'PASSWORD', '']) {
      isError(t, await token(app, { grant_type: grant, username: alice.username, password: PASSWORD }), 400, 'Unsupported grant_type: use password, refresh_token or mfa_otp', `grant_type "${grant}" → 400`, 'UNSUPPORTED_GRANT_TYPE')
    }
    isError(t, await tokenForm(app, { grant_type: 'client_credentials', client_id: 'a', client_secret: 'b' }), 400, 'Unsupported grant_type: use password, refresh_token or mfa_otp', 'form client_credentials → 400', 'UNSUPPORTED_GRANT_TYPE')
    const missing = 'username and password are required for grant_type=password'
    isError(t, await token(app, { password: PASSWORD }), 400, missing, 'no username → 400')
    isError(t, await token(app, { username: alice.username }), 400, missing, 'no password → 400')
    isError(t, await tokenForm(app, { username: alice.username }), 400, missing, 'form without password → 400')
    isError(t, await token(app, {}), 400, missing, 'empty JSON → 400')
    isError(t, await tokenForm(app, {}), 400, missing, 'empty form → 400')
    isError(t, await call(app, { method: 'POST', url: '/auth/token' }), 400, 'body must be object', 'no body at all → 400', VALIDATION)
    isError(t, await token(app, { username: '', password: PASSWORD }), 400, 'body/username must NOT have fewer than 1 characters', 'empty username → 400', VALIDATION)
    isError(t, await token(app, { username: alice.username, password: '' }), 400, 'body/password must NOT have fewer than 1 characters', 'empty password → 400', VALIDATION)
    isError(t, await token(app, { username: alice.username, password: 12345678 }), 400, 'body/password must be string', 'a number as password → 400', VALIDATION)
    isError(t, await token(app, { grant_type: 'refresh_token' }), 400, 'refresh_token is required for grant_type=refresh_token', 'refresh grant without refresh_token → 400')
  })

  await t.test('wrong password and unknown user: the same 401, byte for byte', async (t) => {
    const bad = await token(app, { username: alice.username, password: wrong })
    const badEmail = await token(app, { username: alice.email, password: wrong })
    const unknown = await token(app, { username: 'nobody_here', password: wrong })
    const unknownEmail = await token(app, { username: 'nobody@example.com', password: wrong })
    const unknownForm = await tokenForm(app, { username: 'nobody_here', password: wrong })
    for (const [name, res] of Object.entries({ bad, badEmail, unknown, unknownEmail, unknownForm })) {
      isError(t, res, 401, INVALID_LOGIN.message, `${name} → 401`, INVALID_LOGIN.code)
      t.equal(res.body, JSON.stringify(INVALID_LOGIN), `${name}: the exact body`)
      t.equal(res.headers['www-authenticate'], 'Bearer', `${name}: WWW-Authenticate: Bearer`)
    }
    t.equal(bad.body, unknown.body, 'wrong password and unknown user: identical body strings')
    t.equal(badEmail.body, unknownEmail.body, 'by email too')
    // Headers that legitimately vary per request: the date, the rate-limit counters and the request id.
    const varying = new Set(['date', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-request-id'])
    const stable = (res: Res) => Object.fromEntries(Object.entries(res.headers).filter(([k]) => !varying.has(k)).sort())
    t.strictSame(stable(unknown), stable(bad), 'identical headers')
    t.strictSame(stable(unknownEmail), stable(badEmail), 'identical headers by email')
    const ids = [bad, badEmail, unknown, unknownEmail, unknownForm].map((res) => res.headers['x-request-id'])
    t.ok(ids.every((id) => typeof id === 'string' && id !== ''), 'each names its request id')
    t.equal(new Set(ids).size, ids.length, 'a different one for each request, known account or not')
  })

  await t.test('wrong password and unknown user take comparable time', async (t) => {
    // Warm both paths (the unknown-user path computes its dummy hash once).
    await token(app, { username: alice.username, password: wrong })
    await token(app, { username: 'ghost_timing', password: wrong })
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 6; i++) {
      let start = performance.now()
      t.equal((await token(app, { username: alice.username, password: wrong })).statusCode, 401)
      known.push(performance.now() - start)
      start = performance.now()
      t.equal((await token(app, { username: `ghost_timing_${i}`, password: wrong })).statusCode, 401)
      unknown.push(performance.now() - start)
    }
    const ratio = Math.max(median(known), median(unknown)) / Math.min(median(known), median(unknown))
    t.ok(ratio < 3, 'medians within 3x of each other', { known, unknown, ratio })
  })
})

tap.test('POST /auth/token with the refresh_token grant', async (t) => {
  // A second app whose refresh tokens live one second: issued first, checked last, so the wait overlaps the rest.
  const short = await build(t, { REFRESH_TOKEN_TTL: '1' })
  const shortUser = await loginAs(short)
  const shortIssued = Date.now()

  const app = await build(t, { ACCESS_TOKEN_TTL: '300' })

  await t.test('rotation: a new pair whose tokens differ, and the new access token works', async (t) => {
    const u = await loginAs(app)
    const res = await refresh(app, u.refresh)
    isTokenPair(t, res, 300, 'refresh (JSON)')
    const next = res.json()
    t.not(next.refresh_token, u.refresh, 'a new refresh token')
    t.not(next.access_token, u.access, 'a new access token')
    const mine = await me(app, next.access_token)
    t.equal(mine.statusCode, 200, 'the new access token works')
    t.equal(mine.json().id, u.id, 'for the same user')
    const form = await tokenForm(app, { grant_type: 'refresh_token', refresh_token: next.refresh_token, scope: 'x', client_id: 'y' })
    isTokenPair(t, form, 300, 'refresh (form, with unknown parameters)')
    t.not(form.json().refresh_token, next.refresh_token, 'rotated again')
    const basic = await tokenForm(app, { grant_type: 'refresh_token', refresh_token: form.json().refresh_token },
      { headers: { authorization: 'Basic Og==' } })
    isTokenPair(t, basic, 300, 'refresh with Authorization: Basic Og==')
  })

  await t.test('a used refresh token presented again: 401, and the whole session ends', async (t) => {
    const u = await loginAs(app)
    const other = await login(app, u.username)
    const first = await refresh(app, u.refresh)
    t.equal(first.statusCode, 200)
    const second = first.json()
    const reuse = await refresh(app, u.refresh)
    t.ok(isCredentials401(reuse), 'the reused token → the one 401')
    t.ok(isCredentials401(await refresh(app, second.refresh_token)), 'the newer refresh token of that session → 401')
    t.ok(isCredentials401(await me(app, second.access_token)), 'the newer access token of that session → 401')
    t.ok(isCredentials401(await me(app, u.access)), 'the first access token of that session → 401')
    t.ok(isCredentials401(await refresh(app, u.refresh)), 'and the reused one stays dead')
    t.equal((await me(app, other.access)).statusCode, 200, 'another session of the same user is untouched')
    isTokenPair(t, await refresh(app, other.refresh), 300, 'and its refresh token still rotates')
  })

  await t.test('what is not a valid refresh token → 401', async (t) => {
    const u = await loginAs(app)
    const [h, p, s] = u.refresh.split('.') as [string, string, string]
    const claims = claimsOf(u.refresh)
    const flipped = s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1)
    const now = Math.floor(Date.now() / 1000)
    const cases: Record<string, string> = {
      'the access token': u.access,
      garbage: 'garbage',
      'a.b.c': 'a.b.c',
      'tampered signature': `${h}.${p}.${flipped}`,
      'tampered payload (another user)': `${h}.${b64url({ ...claims, sub: '9999' })}.${s}`,
      'tampered payload (longer life)': `${h}.${b64url({ ...claims, exp: claims.exp + 3600 })}.${s}`,
      'stripped signature': `${h}.${p}.`,
      'alg none': `${b64url({ alg: 'none', typ: 'JWT' })}.${p}.`,
      'a refresh-typed token signed with JWT_SECRET': signAccess({ ...claims, iat: now, exp: now + 600 }),
      'an access token with type refresh': signAccess({ sub: claims.sub, sid: claims.sid, type: 'refresh', iat: now, exp: now + 600 })
    }
    for (const [name, value] of Object.entries(cases)) {
      const res = await refresh(app, value)
      t.ok(isCredentials401(res), `${name} → the one 401`)
    }
    isTokenPair(t, await refresh(app, u.refresh), 300, 'the genuine token still works after those attempts')
  })

  await t.test('a refresh token whose recorded expiry has passed → 401', async (t) => {
    const u = await loginAs(app)
    const { refreshTokens } = app.db.t
    const [latest] = await app.db.q.select({ id: refreshTokens.id }).from(refreshTokens).orderBy(desc(refreshTokens.id)).limit(1)
    await app.db.q.update(refreshTokens).set({ expiresAt: Math.floor(Date.now() / 1000) - 1 })
      .where(eq(refreshTokens.id, latest?.id ?? -1))
    t.ok(isCredentials401(await refresh(app, u.refresh)), 'expired in the database → 401')
  })

  await t.test('a refresh token after logout → 401', async (t) => {
    const u = await loginAs(app)
    t.equal((await logout(app, u.refresh)).statusCode, 204)
    t.ok(isCredentials401(await refresh(app, u.refresh)), '→ the one 401')
  })

  await t.test('refresh tokens are stored only as hashes', async (t) => {
    const u = await loginAs(app)
    const next = (await refresh(app, u.refresh)).json()
    const stored = JSON.stringify({
      refreshTokens: await app.db.q.select().from(app.db.t.refreshTokens),
      sessions: await app.db.q.select().from(app.db.t.sessions)
    })
    for (const [name, value] of Object.entries({ first: u.refresh, second: next.refresh_token })) {
      const [, payload, signature] = value.split('.') as [string, string, string]
      t.notOk(stored.includes(value), `${name}: the raw token is not stored`)
      t.notOk(stored.includes(signature), `${name}: nor its signature`)
      t.notOk(stored.includes(payload), `${name}: nor its payload`)
    }
    t.ok(await countRows(app, app.db.t.refreshTokens), 'yet the tokens are recorded')
  })

  await t.test('ten parallel uses of one refresh token: exactly one 200, the rest 401, never 500', async (t) => {
    const u = await loginAs(app)
    const results = await Promise.all(Array.from({ length: 10 }, () => refresh(app, u.refresh)))
    const codes = results.map((r) => r.statusCode)
    t.equal(codes.filter((c) => c === 200).length, 1, 'exactly one 200', { codes })
    t.equal(codes.filter((c) => c === 401).length, 9, 'nine 401', { codes })
    t.ok(results.filter((r) => r.statusCode === 401).every(isCredentials401), 'each the one 401')
    t.notOk(codes.some((c) => c >= 500), 'no 5xx')
  })

  await t.test('an expired refresh token → 401', async (t) => {
    const waited = 2100 - (Date.now() - shortIssued)
    if (waited > 0) await sleep(waited)
    const res = await refresh(short, shortUser.refresh)
    t.ok(isCredentials401(res), 'REFRESH_TOKEN_TTL=1, used after 2.1 s → the one 401')
  })
})

tap.test('POST /auth/logout', async (t) => {
  const app = await build(t)
  const u = await loginAs(app)
  const other = await login(app, u.username)
  const rotated = (await refresh(app, u.refresh)).json()

  await t.test('204 with a valid token; that session\'s tokens stop working', async (t) => {
    const res = await logout(app, rotated.refresh_token)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '', 'no body')
    t.ok(isCredentials401(await refresh(app, rotated.refresh_token)), 'its refresh token → 401')
    t.ok(isCredentials401(await me(app, rotated.access_token)), 'its latest access token → 401')
    t.ok(isCredentials401(await me(app, u.access)), 'its first access token → 401')
  })

  await t.test('other sessions of the same user keep working', async (t) => {
    t.equal((await me(app, other.access)).statusCode, 200, 'the other access token works')
    const next = await refresh(app, other.refresh)
    isTokenPair(t, next, 900, 'the other refresh token rotates')
    other.refresh = next.json().refresh_token
    other.access = next.json().access_token
  })

  await t.test('idempotent: 204 again, for an old token of the session, and for garbage', async (t) => {
    t.equal((await logout(app, rotated.refresh_token)).statusCode, 204, 'the same token again → 204')
    t.equal((await logout(app, u.refresh)).statusCode, 204, 'an already-used token of the ended session → 204')
    t.equal((await logout(app, 'garbage')).statusCode, 204, 'garbage → 204')
    t.equal((await logout(app, 'a.b.c')).statusCode, 204, 'a JWT-looking garbage → 204')
    t.equal((await logout(app, u.access)).statusCode, 204, 'an access token → 204')
    t.equal((await me(app, other.access)).statusCode, 200, 'none of which touched the other session')
  })

  await t.test('an invalid body → 400', async (t) => {
    isError(t, await call(app, { method: 'POST', url: '/auth/logout', payload: {} }), 400, 'body must have required property \'refresh_token\'', 'missing refresh_token → 400', VALIDATION)
    isError(t, await call(app, { method: 'POST', url: '/auth/logout' }), 400, 'body must be object', 'no body → 400', VALIDATION)
    isError(t, await call(app, { method: 'POST', url: '/auth/logout', payload: { refresh_token: other.refresh, user_id: 1 } }), 400, 'body has an unknown property "user_id"', 'an unknown field → 400', VALIDATION)
    isError(t, await call(app, { method: 'POST', url: '/auth/logout', payload: { refresh_token: 42 } }), 400, 'body/refresh_token must be string', 'a number → 400', VALIDATION)
    t.equal((await me(app, other.access)).statusCode, 200, 'the rejected logout with a valid token ended nothing')
  })
})

tap.test('POST /auth/logout-all', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const aliceOther = await login(app, alice.username)
  const aliceRotated = (await refresh(app, aliceOther.refresh)).json()
  const bob = await loginAs(app)

  await t.test('anonymous → the one 401', async (t) => {
    const res = await logoutAll(app)
    t.ok(isCredentials401(res), 'no token → 401')
    t.same(res.json(), CREDENTIALS_401)
    t.ok(isCredentials401(await logoutAll(app, 'garbage')), 'a garbage token → 401')
    t.ok(isCredentials401(await logoutAll(app, alice.refresh)), 'a refresh token as bearer → 401')
    t.equal((await me(app, alice.access)).statusCode, 200, 'nothing ended')
  })

  await t.test('204; every earlier token of the user dies; another user is untouched', async (t) => {
    const res = await logoutAll(app, alice.access)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '', 'no body')
    t.ok(isCredentials401(await me(app, alice.access)), 'the calling access token → 401')
    t.ok(isCredentials401(await me(app, aliceOther.access)), 'the other session\'s first access token → 401')
    t.ok(isCredentials401(await me(app, aliceRotated.access_token)), 'the other session\'s latest access token → 401')
    t.ok(isCredentials401(await refresh(app, alice.refresh)), 'the first session\'s refresh token → 401')
    t.ok(isCredentials401(await refresh(app, aliceRotated.refresh_token)), 'the other session\'s refresh token → 401')
    t.ok(isCredentials401(await logoutAll(app, alice.access)), 'logout-all with the dead token → 401')
    t.equal((await me(app, bob.access)).statusCode, 200, 'bob\'s access token works')
    isTokenPair(t, await refresh(app, bob.refresh), 900, 'bob\'s refresh token rotates')
  })

  await t.test('a login afterwards works at once', async (t) => {
    const res = await token(app, { username: alice.username, password: PASSWORD })
    isTokenPair(t, res, 900, 'login right after logout-all')
    t.equal((await me(app, res.json().access_token)).statusCode, 200, 'the new access token works at once')
    isTokenPair(t, await refresh(app, res.json().refresh_token), 900, 'the new refresh token works at once')
  })
})

tap.test('login throttling per account and client', async (t) => {
  const app = await build(t, { LOGIN_FAILURE_LIMIT: '3' })
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const carol = await loginAs(app)
  const dave = await loginAs(app)
  const wrong = 'not the right passphrase'
  let throttledBody = ''

  await t.test('after 3 failures, the 4th attempt is 429 even with the right password', async (t) => {
    for (let i = 1; i <= 3; i++) {
      isError(t, await token(app, { username: alice.username, password: wrong }), 401, INVALID_LOGIN.message, `failure ${i} → 401`, INVALID_LOGIN.code)
    }
    const res = await token(app, { username: alice.username, password: PASSWORD })
    isError(t, res, 429, LOGIN_THROTTLED.message, 'the right password → 429', LOGIN_THROTTLED.code)
    isRetryAfter(t, res, 900, 'throttled login')
    throttledBody = res.body
    const byUpperName = await tokenForm(app, { username: alice.username.toUpperCase(), password: PASSWORD })
    isError(t, byUpperName, 429, LOGIN_THROTTLED.message, 'the same identifier in another case → 429', LOGIN_THROTTLED.code)
    isRetryAfter(t, byUpperName, 900, 'throttled login in another case')
  })

  await t.test('another client is not locked out', async (t) => {
    isTokenPair(t, await token(app, { username: alice.username, password: PASSWORD }, { remoteAddress: '10.0.0.2' }), 900, 'alice from 10.0.0.2')
    isError(t, await token(app, { username: alice.username, password: PASSWORD }), 429, LOGIN_THROTTLED.message, 'still 429 from the first client', LOGIN_THROTTLED.code)
  })

  await t.test('failures on other accounts do not count towards this one', async (t) => {
    const client = { remoteAddress: '10.0.0.3' }
    for (const username of [bob.username, bob.username, bob.username, 'ghost_a', 'ghost_b', 'ghost_c', 'ghost_d', dave.email]) {
      t.equal((await token(app, { username, password: wrong }, client)).statusCode, 401, `a failure on ${username}`)
    }
    t.equal((await token(app, { username: carol.username, password: wrong }, client)).statusCode, 401, 'one failure on carol')
    t.equal((await token(app, { username: carol.username, password: wrong }, client)).statusCode, 401, 'two failures on carol')
    isTokenPair(t, await token(app, { username: carol.username, password: PASSWORD }, client), 900, 'carol still logs in from that client')
    isError(t, await token(app, { username: bob.username, password: PASSWORD }, client), 429, LOGIN_THROTTLED.message, 'while bob is throttled there', LOGIN_THROTTLED.code)
  })

  await t.test('unknown accounts are throttled the same way', async (t) => {
    const client = { remoteAddress: '10.0.0.4' }
    for (let i = 1; i <= 3; i++) {
      isError(t, await token(app, { username: 'ghost_user', password: wrong }, client), 401, INVALID_LOGIN.message, `unknown account failure ${i} → 401`, INVALID_LOGIN.code)
    }
    const res = await token(app, { username: 'ghost_user', password: wrong }, client)
    isError(t, res, 429, LOGIN_THROTTLED.message, 'the 4th attempt on an unknown account → 429', LOGIN_THROTTLED.code)
    isRetryAfter(t, res, 900, 'throttled unknown account')
    t.equal(res.body, throttledBody, 'the same body as for a real account')
  })

  await t.test('throttling cannot tell a real account from an unknown one by the identifier typed', async (t) => {
    // The same pattern against a real account and an unknown one, by username and by email. (Failures by
    // username and by email add up for a real account, one count per account as the contract asks; for
    // an unknown pair nothing ties the two. That tells whether an address belongs to a username, which
    // registration's 409 for a taken address tells anyway.)
    for (const [kind, real, unknown] of [['username', dave.username, 'phantom'], ['email', dave.email, 'phantom@example.com']] as const) {
      const client = { remoteAddress: kind === 'username' ? '10.0.0.5' : '10.0.0.6' }
      const probe = async (login: string) => {
        for (let i = 0; i < 3; i++) await token(app, { username: login, password: wrong }, client)
        return token(app, { username: login, password: wrong }, client)
      }
      const a = await probe(real)
      const b = await probe(unknown)
      t.equal(a.statusCode, b.statusCode, `${kind}: the same status for both`, { real: a.body, unknown: b.body })
      t.equal(a.body, b.body, `${kind}: the same body for both`)
    }
  })

  await t.test('one count per account: wrong passwords by username and by email add up', async (t) => {
    const client = { remoteAddress: '10.0.0.7' }
    const erin = await loginAs(app)
    for (const login of [erin.username, erin.email.toUpperCase(), erin.username]) {
      t.equal((await token(app, { username: login, password: wrong }, client)).statusCode, 401, `a wrong password as ${login}: 401`)
    }
    const fourth = await token(app, { username: erin.email, password: erin.password }, client)
    t.equal(fourth.statusCode, 429, 'the fourth attempt, by email, is past the account\'s limit of 3 (whatever was typed before)')
    t.equal(fourth.json().code, 'LOGIN_THROTTLED')
  })
})

tap.test('the /auth rate limit', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT: '5' })
  // @fastify/rate-limit names the time left, which crosses a second boundary on a busy machine.
  const RATE_LIMITED = /^Rate limit exceeded, retry in (1 minute|[1-5]?[0-9] seconds)$/
  const password = 'rate limited passphrase'
  passwords.add(password)

  const created = await register(app, { email: 'rl@example.com', username: 'ratelimited', password })
  t.equal(created.statusCode, 201, '1: register')
  const pair = await token(app, { username: 'ratelimited', password })
  t.equal(pair.statusCode, 200, '2: login')
  const rotated = await refresh(app, pair.json().refresh_token)
  t.equal(rotated.statusCode, 200, '3: refresh')
  t.equal((await logout(app, 'garbage')).statusCode, 204, '4: logout')
  t.equal((await logoutAll(app, rotated.json().access_token)).statusCode, 204, '5: logout-all')

  const sixth: Record<string, Res> = {
    register: await register(app, { email: 'rl2@example.com', username: 'ratelimited2', password }),
    token: await token(app, { username: 'ratelimited', password }),
    'token (form)': await tokenForm(app, { username: 'ratelimited', password }),
    refresh: await refresh(app, rotated.json().refresh_token),
    logout: await logout(app, 'garbage'),
    'logout-all': await logoutAll(app, rotated.json().access_token)
  }
  for (const [route, res] of Object.entries(sixth)) {
    isError(t, res, 429, RATE_LIMITED, `${route} past the limit → 429`)
    isRetryAfter(t, res, 60, `${route} past the limit`)
  }
  t.equal(await userCount(app, 'rl2@example.com'), 0, 'the throttled registration created nothing')

  for (let i = 0; i < 10; i++) {
    const health = await call(app, { url: '/health' })
    if (health.statusCode !== 200) t.fail(`GET /health ${i + 1} → ${health.statusCode}`)
  }
  t.pass('GET /health is not throttled')
  const id = created.json().id
  for (let i = 0; i < 10; i++) {
    const user = await call(app, { url: `/users/${id}` })
    if (user.statusCode !== 200) t.fail(`GET /users/${id} ${i + 1} → ${user.statusCode}`)
  }
  t.pass('nor are other routes')

  isTokenPair(t, await token(app, { username: 'ratelimited', password }, { remoteAddress: '10.9.9.9' }), 900, 'another client is not limited')
})

tap.test('no response body carries a password or a password hash', async (t) => {
  t.ok(bodies.length > 100, `${bodies.length} bodies seen`)
  const leaks = bodies.filter((body) =>
    body.includes('$argon2') || /password_?hash/i.test(body) || [...passwords].some((p) => body.includes(p)))
  t.strictSame(leaks, [], 'none')
})

tap.test('a refused login is its own 401: another message, code INVALID_LOGIN, and WWW-Authenticate', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const res = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: user.username, password: 'not the password' } })
  isError(t, res, 401, 'Incorrect username or password', 'a wrong password: 401 Incorrect username or password', 'INVALID_LOGIN')
  t.equal(res.json().code, 'INVALID_LOGIN')
  t.equal(res.headers['www-authenticate'], 'Bearer')
})
