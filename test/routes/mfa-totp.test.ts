// Authenticator apps (TOTP), recovery codes and the two-step login, through the API with real codes
// (otplib computes them from the secret the API handed out, as an app would).
import { eq, sql } from 'drizzle-orm'
import t from 'tap'
import { startPasswordReset } from '../../src/domain/accounts.js'
import { build, isError, loginAs, PASSWORD, sqlRows } from '../helper.js'
import { enableTotp, mfaGrant, mfaToken, totpCode } from '../support/mfa.js'
import { smtpServer, waitForMail } from '../support/smtp.js'

const enrol = (app: Awaited<ReturnType<typeof build>>, auth: { authorization: string }, password = PASSWORD) =>
  app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: auth, payload: { password } })
const confirm = (app: Awaited<ReturnType<typeof build>>, auth: { authorization: string }, code: string) =>
  app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: auth, payload: { code } })
const me = async (app: Awaited<ReturnType<typeof build>>, auth: { authorization: string }) => (await app.inject({ url: '/users/me', headers: auth })).json()
const auditActions = async (app: Awaited<ReturnType<typeof build>>, userId: number) =>
  (await app.db.q.select().from(app.db.t.auditLog).where(eq(app.db.t.auditLog.targetId, userId))).map((e) => e.action)

t.test('enrolment: a secret after the password, on only once a code confirms it; 10 recovery codes', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)

  isError(t, await enrol(app, ada.auth, 'not my password'), 400, 'Password is incorrect', 'a wrong password')
  isError(t, await confirm(app, ada.auth, '123456'), 409, 'No authenticator app is being set up: call POST /users/me/mfa/totp first', 'confirm before start')
  const first = await enrol(app, ada.auth)
  t.equal(first.statusCode, 200)
  t.equal(first.headers['cache-control'], 'no-store', 'the secret is not cached')
  const stale = first.json().secret as string
  const started = await enrol(app, ada.auth)
  const { secret, otpauth_url: url } = started.json()
  t.match(secret, /^[A-Z2-7]{32}$/, '160 random bits, base32')
  t.not(secret, stale, 'a new call replaces the unconfirmed secret')
  t.equal(url, `otpauth://totp/Inkwell:${encodeURIComponent(ada.email)}?secret=${secret}&issuer=Inkwell`, 'the otpauth URL an app scans')

  t.equal((await me(app, ada.auth)).mfa.totp, false, 'not on before it is confirmed')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { username: ada.username, password: PASSWORD } })).statusCode, 200,
    'a login still needs no code')
  isError(t, await confirm(app, ada.auth, await totpCode(stale)), 400, 'The code is incorrect', 'the replaced secret\'s code')
  isError(t, await confirm(app, ada.auth, 'abcdef'), 400, 'body/code must match pattern "^[0-9]{6}$"', 'not six digits')

  const rows = await sqlRows<{ secret: string }>(app, sql`select secret from totp_factors`)
  t.equal(rows.length, 1)
  t.notOk(rows[0]!.secret.includes(secret), 'the secret is stored encrypted, not as it is')

  const confirmed = await confirm(app, ada.auth, await totpCode(secret))
  t.equal(confirmed.statusCode, 200)
  const codes = confirmed.json().recovery_codes as string[]
  t.equal(codes.length, 10, '10 recovery codes')
  t.equal(new Set(codes).size, 10, 'all different')
  t.ok(codes.every((c) => /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/.test(c)), 'written for people: xxxx-xxxx-xxxx')
  t.strictSame((await me(app, ada.auth)).mfa, { totp: true, passkeys: 0, recovery_codes_left: 10 }, 'GET /users/me shows it')
  isError(t, await enrol(app, ada.auth), 409, 'An authenticator app is already on; turn it off first', 'a second enrolment')
  isError(t, await confirm(app, ada.auth, await totpCode(secret, 1)), 409, 'An authenticator app is already on; turn it off first', 'a second confirmation')
  t.same(await auditActions(app, ada.id), ['mfa_totp_enabled'], 'audited')
  const hashes = await sqlRows<{ code_hash: string }>(app, sql`select code_hash from recovery_codes`)
  t.equal(hashes.length, 10)
  t.notOk(hashes.some((h) => codes.some((c) => h.code_hash.includes(c.replace(/-/g, '')))), 'recovery codes are stored as hashes only')
})

t.test('login in two steps: 403 MFA_REQUIRED with an mfa_token, then grant_type=mfa_otp', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const { secret } = await enableTotp(app, ada)

  const first = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: ada.email, password: PASSWORD } })
  t.equal(first.statusCode, 403, 'the right password: 403')
  const body = first.json()
  t.match(body, { statusCode: 403, error: 'Forbidden', code: 'MFA_REQUIRED', message: String }, 'in the error shape, with code MFA_REQUIRED')
  t.match(body.mfa_token, /^[A-Za-z0-9_-]{43}$/, 'and an opaque mfa_token')
  t.notOk('access_token' in body, 'no tokens yet')
  t.equal(first.headers['cache-control'], 'no-store')
  isError(t, await app.inject({ method: 'POST', url: '/auth/token', payload: { username: ada.email, password: 'wrong password here' } }), 401, 'Incorrect username or password', 'a wrong password is still the plain 401')

  const wrong = await mfaGrant(app, body.mfa_token, '000000')
  isError(t, wrong, 401, 'Invalid code', 'a wrong code')
  t.equal(wrong.headers['www-authenticate'], 'Bearer')
  t.equal(wrong.json().code, 'INVALID_CODE')
  isError(t, await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'mfa_otp', mfa_token: body.mfa_token } }), 400, 'mfa_token and otp are required for grant_type=mfa_otp', 'no code')

  const code = await totpCode(secret)
  const done = await mfaGrant(app, body.mfa_token, code, { form: true })
  t.equal(done.statusCode, 200, 'the right code (as a form): tokens')
  const tokens = done.json()
  t.equal(tokens.token_type, 'bearer')
  const auth = { authorization: `Bearer ${tokens.access_token}` }
  const sessions = (await app.inject({ url: '/users/me/sessions', headers: auth })).json()
  t.same(sessions.items.find((s: { current: boolean }) => s.current).amr, ['pwd', 'otp'], 'the session remembers both factors')

  isError(t, await mfaGrant(app, body.mfa_token, await totpCode(secret, 1)), 401, 'Invalid or expired mfa_token; log in again', 'the mfa_token is single use')
  const again = await mfaToken(app, ada.username, PASSWORD)
  isError(t, await mfaGrant(app, again, code), 401, 'Invalid code', 'the same code is refused a second time (no replay in its window)')
  t.equal((await mfaGrant(app, again, await totpCode(secret, 1))).statusCode, 200, 'the next step\'s code works, once')

  const refreshed = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token } })
  t.equal(refreshed.statusCode, 200, 'refreshing needs no second factor again')
  isError(t, await mfaGrant(app, 'not-a-token', '123456'), 401, 'Invalid or expired mfa_token; log in again', 'an unknown mfa_token')
})

t.test('an mfa_token is void after 5 wrong codes, after a password change, and after 5 minutes', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const { secret } = await enableTotp(app, ada)

  const token = await mfaToken(app, ada.username, PASSWORD)
  for (let i = 1; i <= 5; i++) isError(t, await mfaGrant(app, token, String(100000 + i)), 401, 'Invalid code', `wrong code ${i}`)
  isError(t, await mfaGrant(app, token, await totpCode(secret)), 401, 'Invalid or expired mfa_token; log in again', 'the right code after 5 wrong ones')

  const beforeChange = await mfaToken(app, ada.username, PASSWORD)
  const changed = await app.inject({
    method: 'PUT', url: '/users/me/password', headers: ada.auth,
    payload: { current_password: PASSWORD, new_password: 'another fine passphrase', otp: await totpCode(secret) }
  })
  t.equal(changed.statusCode, 200, 'the password changes (with a code)')
  isError(t, await mfaGrant(app, beforeChange, await totpCode(secret, 1)), 401, 'Invalid or expired mfa_token; log in again', 'a password change voids it')

  const late = await mfaToken(app, ada.username, 'another fine passphrase')
  await app.db.transaction((tx) => tx.q.update(tx.t.mfaChallenges).set({ expiresAt: 1 }))
  isError(t, await mfaGrant(app, late, '123456'), 401, 'Invalid or expired mfa_token; log in again', 'an expired one')
})

t.test('recovery codes: each once in place of a code, audited, a notice mailed; regenerated with password and code', async (t) => {
  const inbox = await smtpServer(t)
  const app = await build(t, { SMTP_URL: `smtp://127.0.0.1:${inbox.port}` }, { mail: { retryDelaysMs: [50], timeoutMs: 500 } })
  const ada = await loginAs(app)
  const { secret, recoveryCodes } = await enableTotp(app, ada)
  const code = recoveryCodes[0]!

  const token = await mfaToken(app, ada.username, PASSWORD)
  const res = await mfaGrant(app, token, ` ${code.toUpperCase().replace(/-/g, ' ')} `)
  t.equal(res.statusCode, 200, 'a recovery code, in capitals with spaces for dashes, logs in')
  const auth = { authorization: `Bearer ${res.json().access_token}` }
  const sessions = (await app.inject({ url: '/users/me/sessions', headers: auth })).json()
  t.same(sessions.items.find((s: { current: boolean }) => s.current).amr, ['pwd', 'rc'], 'amr records a recovery code')
  t.equal((await me(app, auth)).mfa.recovery_codes_left, 9, 'nine left')
  const notice = await waitForMail(inbox, ada.email, (m) => /recovery code/i.test(m.subject ?? ''))
  t.match(notice.text, /9 codes are left/, 'the owner is told, with how many are left')
  t.ok((await auditActions(app, ada.id)).includes('mfa_recovery_code_used'), 'audited')

  isError(t, await mfaGrant(app, await mfaToken(app, ada.username, PASSWORD), code), 401, 'Invalid code', 'the same recovery code twice')

  const regen = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/users/me/mfa/recovery-codes', headers: ada.auth, payload })
  isError(t, await regen({ password: PASSWORD }), 400, 'body must have required property \'otp\'', 'without a code')
  isError(t, await regen({ password: PASSWORD, otp: '000000' }), 400, 'The code is incorrect', 'with a wrong code')
  isError(t, await regen({ password: 'wrong password!', otp: await totpCode(secret) }), 400, 'Password is incorrect', 'with a wrong password')
  const fresh = await regen({ password: PASSWORD, otp: await totpCode(secret) })
  t.equal(fresh.statusCode, 200)
  const newCodes = fresh.json().recovery_codes as string[]
  t.equal(newCodes.length, 10)
  isError(t, await mfaGrant(app, await mfaToken(app, ada.username, PASSWORD), recoveryCodes[1]!), 401, 'Invalid code', 'an old code no longer works')
  t.equal((await mfaGrant(app, await mfaToken(app, ada.username, PASSWORD), newCodes[0]!)).statusCode, 200, 'a new one does')
  t.ok((await auditActions(app, ada.id)).includes('mfa_recovery_codes_regenerated'), 'regeneration audited')
})

t.test('re-authentication asks for a code when TOTP is on; turning it off needs both; a reset leaves it on', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const { secret, recoveryCodes } = await enableTotp(app, ada)
  const del = (payload: Record<string, unknown>) => app.inject({ method: 'DELETE', url: '/users/me', headers: ada.auth, payload })

  const missing = await del({ password: PASSWORD })
  isError(t, missing, 400, 'A code from your authenticator app (or a recovery code) is required', 'deletion with the password alone')
  t.equal(missing.json().code, 'OTP_REQUIRED')
  isError(t, await del({ password: PASSWORD, otp: '000000' }), 400, 'The code is incorrect', 'deletion with a wrong code')
  const email = await app.inject({ method: 'POST', url: '/users/me/email', headers: ada.auth, payload: { new_email: 'ada.new@example.com', current_password: PASSWORD } })
  isError(t, email, 400, 'A code from your authenticator app (or a recovery code) is required', 'an e-mail change with the password alone')
  t.equal((await app.inject({ method: 'POST', url: '/users/me/email', headers: ada.auth, payload: { new_email: 'ada.new@example.com', current_password: PASSWORD, otp: recoveryCodes[0] } })).statusCode,
    202, 'an e-mail change with a recovery code')

  const off = (payload: Record<string, unknown>) => app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers: ada.auth, payload })
  isError(t, await off({ password: PASSWORD, otp: '000000' }), 400, 'The code is incorrect', 'turning it off with a wrong code')
  t.equal((await off({ password: PASSWORD, otp: await totpCode(secret) })).statusCode, 204, 'turned off with password and code')
  t.strictSame((await me(app, ada.auth)).mfa, { totp: false, passkeys: 0, recovery_codes_left: 0 }, 'the secret and the codes are gone')
  isError(t, await off({ password: PASSWORD, otp: '123456' }), 409, 'No authenticator app is on', 'turning it off twice')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { username: ada.username, password: PASSWORD } })).statusCode, 200, 'a login needs no code again')
  t.same((await auditActions(app, ada.id)).filter((a) => a.startsWith('mfa_')), ['mfa_totp_enabled', 'mfa_recovery_code_used', 'mfa_totp_disabled'], 'on, a code used, off: audited')

  const bob = await loginAs(app)
  await enableTotp(app, bob)
  const started = await startPasswordReset(app.db, { id: bob.id, email: bob.email }, 600)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token: started, new_password: 'a brand new passphrase' } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { username: bob.username, password: 'a brand new passphrase' } })).statusCode, 403,
    'after a password reset the second factor is still asked for')
})

t.test('ADMIN_MFA_REQUIRED: /admin needs a session opened with a second factor', async (t) => {
  const app = await build(t, { ADMIN_MFA_REQUIRED: 'true' })
  const admin = await loginAs(app, 'admin')
  const user = await loginAs(app, 'user')
  const adminUsers = (auth: { authorization: string }) => app.inject({ url: '/admin/users', headers: auth })

  const refused = await adminUsers(admin.auth)
  isError(t, refused, 403, 'Second factor required', 'an admin with a password-only session')
  t.equal(refused.json().code, 'MFA_REQUIRED')
  isError(t, await adminUsers(user.auth), 403, 'Requires role: admin', 'a user still gets the role\'s 403 first')

  const { secret } = await enableTotp(app, admin)
  const res = await mfaGrant(app, await mfaToken(app, admin.username, PASSWORD), await totpCode(secret))
  t.equal((await adminUsers({ authorization: `Bearer ${res.json().access_token}` })).statusCode, 200, 'with a code: allowed')

  const doc = (await app.inject({ url: '/docs/json' })).json()
  t.match(doc.paths['/admin/users'].get.description, /second factor/, 'the document says so on /admin routes')
  t.match(doc.paths['/admin/users'].get.responses['403'].description, /Second factor required/)

  const plain = await build(t)
  const other = await loginAs(plain, 'admin')
  t.equal((await plain.inject({ url: '/admin/users', headers: other.auth })).statusCode, 200, 'without the setting, a password is enough')
  t.notMatch((await plain.inject({ url: '/docs/json' })).json().paths['/admin/users'].get.description ?? '', /second factor/, 'and the document does not ask for one')
})
