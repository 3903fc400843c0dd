// Account recovery and e-mail verification, end to end over real SMTP: every flow follows the link
// from the mail a real SMTP server received (smtp-server, parsed with mailparser).
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { simpleParser } from 'mailparser'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { build, buildWithMail, isCredentials401, isError, login, loginAs, PASSWORD } from '../helper.js'
import { linkOf, reply, smtpServer, waitForMail, type Inbox } from '../support/smtp.js'

const APP_URL = 'https://app.inkwell.test'
const NEW_PASSWORD = 'a freshly chosen passphrase'

const withMail = (t: Test, env: Record<string, string> = {}, inbox?: Inbox) => buildWithMail(t, { APP_URL, ...env }, inbox)

let n = 0
async function register (app: App, inbox: Inbox) {
  const i = ++n
  const email = `reader${i}@example.com`
  const username = `reader_${i}`
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, username, password: PASSWORD } })
  if (res.statusCode !== 201) throw new Error(`register: ${res.statusCode} ${res.body}`)
  const mail = await waitForMail(inbox, email, (m) => /verify-email/.test(m.text ?? ''))
  return { id: res.json().id as number, email, username, mail }
}

const post = (app: App, url: string, payload: Record<string, unknown>, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload, headers })
const bearer = (access: string) => ({ authorization: `Bearer ${access}` })
const me = async (app: App, access: string) => (await app.inject({ url: '/users/me', headers: bearer(access) })).json()
const invalidToken = (t: Test, res: Awaited<ReturnType<typeof post>>, what: string) =>
  isError(t, res, 400, 'Invalid or expired token', what)

t.test('registration mails a verification link; following it verifies the address, once', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const { access } = await login(app, user.username)
  t.equal((await me(app, access)).email_verified, false, 'the account starts unverified')

  const { mail } = user
  t.match(mail.subject, /confirm your e-mail/i, 'a clear subject')
  t.ok(mail.text !== undefined && mail.text.length > 0, 'a plain-text part')
  t.ok(typeof mail.html === 'string' && mail.html.length > 0, 'an HTML part')
  const { link, token } = linkOf(mail)
  t.equal(`${link.origin}${link.pathname}`, `${APP_URL}/verify-email`, 'the link is APP_URL/verify-email')
  t.match(token, /^[A-Za-z0-9_-]{43,}$/, 'the token is base64url of at least 256 bits')
  t.ok((mail.html as string).includes(token), 'the HTML part carries the same link')

  t.equal((await post(app, '/auth/verify-email', { token })).statusCode, 204, 'following the link: 204')
  t.equal((await me(app, access)).email_verified, true, 'the address is verified')
  invalidToken(t, await post(app, '/auth/verify-email', { token }), 'the same link again')
  invalidToken(t, await post(app, '/auth/verify-email', { token: token.slice(0, -2) + 'xx' }), 'a tampered token')
  invalidToken(t, await post(app, '/auth/verify-email', { token: 'nonsense' }), 'an unknown token')
  isError(t, await post(app, '/auth/verify-email', {}), 400, 'body must have required property \'token\'', 'no token')
})

t.test('resending verification: a fresh link voids the older one; verified → 409; at most 3 an hour', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const { access } = await login(app, user.username)
  const first = linkOf(user.mail).token
  const resend = await app.inject({ method: 'POST', url: '/users/me/verify-email', headers: bearer(access) })
  t.equal(resend.statusCode, 202)
  const second = linkOf(await waitForMail(inbox, user.email, (m) => !m.text?.includes(first) && /verify-email/.test(m.text ?? ''))).token
  t.not(second, first, 'a new link')
  invalidToken(t, await post(app, '/auth/verify-email', { token: first }), 'the older link is void')
  t.equal((await post(app, '/auth/verify-email', { token: second })).statusCode, 204, 'the newer one works')
  isError(t, await app.inject({ method: 'POST', url: '/users/me/verify-email', headers: bearer(access) }), 409, 'Email already verified', 'once verified: 409')
  t.ok(isCredentials401(await app.inject({ method: 'POST', url: '/users/me/verify-email' })), 'anonymous: the one 401')

  const other = await register(app, inbox)
  const otherAccess = (await login(app, other.username)).access
  for (let i = 0; i < 4; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/users/me/verify-email', headers: bearer(otherAccess) })).statusCode, 202, `resend ${i + 1}: 202`)
  }
  await app.settled()
  const toOther = inbox.mails.filter((m) => m.to !== undefined && JSON.stringify(m.to).includes(other.email))
  t.equal(toOther.length, 3, 'three mails in the hour (the registration\'s and two resends); the rest sent nothing')
})

t.test('password reset: same answer for any address; the mailed link sets a new password and ends every session', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const old = await login(app, user.username)

  const known = await post(app, '/auth/password-reset', { email: user.email.toUpperCase() })
  const unknown = await post(app, '/auth/password-reset', { email: 'nobody@example.com' })
  t.equal(known.statusCode, 202)
  t.equal(unknown.statusCode, 202)
  t.equal(known.body, unknown.body, 'the same body whether or not an account has the address')
  t.same(Object.keys(known.headers).sort(), Object.keys(unknown.headers).sort(), 'and the same headers')
  const mail = await waitForMail(inbox, user.email, (m) => /reset-password/.test(m.text ?? ''))
  await app.settled()
  t.notOk(inbox.mails.some((m) => JSON.stringify(m.to).includes('nobody@example.com')), 'nothing is mailed to an unknown address')
  t.match(mail.subject, /reset your inkwell password/i)
  const { link, token } = linkOf(mail)
  t.equal(`${link.origin}${link.pathname}`, `${APP_URL}/reset-password`, 'APP_URL/reset-password')

  isError(t, await post(app, '/auth/password-reset/confirm', { token, new_password: 'password1' }), 400, 'This password is too common; choose another one', 'a common password: 400')
  t.equal((await post(app, '/auth/password-reset/confirm', { token, new_password: NEW_PASSWORD })).statusCode, 204,
    'the refused attempt did not spend the link: 204')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: bearer(old.access) })), 'the old access token is dead')
  t.equal((await post(app, '/auth/token', { grant_type: 'refresh_token', refresh_token: old.refresh })).statusCode, 401, 'and its refresh token')
  t.equal((await post(app, '/auth/token', { username: user.username, password: PASSWORD })).statusCode, 401, 'the old password no longer logs in')
  const fresh = await login(app, user.username, NEW_PASSWORD)
  t.equal((await me(app, fresh.access)).email_verified, true, 'the link proved the address too')
  invalidToken(t, await post(app, '/auth/password-reset/confirm', { token, new_password: 'yet another passphrase' }), 'the link works once')

  const root = await loginAs(app, 'admin')
  const audit = (await app.inject({ url: '/admin/audit?limit=100', headers: root.auth })).json()
  t.ok(audit.items.some((e: { action: string, target_id: number }) => e.action === 'password_reset' && e.target_id === user.id), 'the audit log records password_reset')
})

t.test('a newer reset request, or a password change, voids earlier links; links expire', async (t) => {
  const { app, inbox } = await withMail(t, { PASSWORD_RESET_TTL: '1' })
  const user = await register(app, inbox)
  const tokens: string[] = []
  for (let i = 0; i < 2; i++) {
    t.equal((await post(app, '/auth/password-reset', { email: user.email })).statusCode, 202)
    await app.settled()
    const mails = inbox.mails.filter((m) => /reset-password/.test(m.text ?? '') && JSON.stringify(m.to).includes(user.email))
    tokens.push(linkOf(mails[mails.length - 1]!).token)
  }
  invalidToken(t, await post(app, '/auth/password-reset/confirm', { token: tokens[0], new_password: NEW_PASSWORD }), 'the older link is void')
  await new Promise((resolve) => setTimeout(resolve, 2100))
  invalidToken(t, await post(app, '/auth/password-reset/confirm', { token: tokens[1], new_password: NEW_PASSWORD }), 'the newer one expired after PASSWORD_RESET_TTL=1')

  const other = await register(app, inbox)
  const { access } = await login(app, other.username)
  t.equal((await post(app, '/auth/password-reset', { email: other.email })).statusCode, 202)
  const link = linkOf(await waitForMail(inbox, other.email, (m) => /reset-password/.test(m.text ?? ''))).token
  const change = await app.inject({ method: 'PUT', url: '/users/me/password', headers: bearer(access), payload: { current_password: PASSWORD, new_password: NEW_PASSWORD } })
  t.equal(change.statusCode, 200, 'a password change')
  invalidToken(t, await post(app, '/auth/password-reset/confirm', { token: link, new_password: 'yet another passphrase' }), 'voids the reset link')
})

t.test('at most 3 reset mails an account an hour; past that still 202 and nothing is sent', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const answers = []
  for (let i = 0; i < 5; i++) answers.push(await post(app, '/auth/password-reset', { email: user.email }))
  t.same(answers.map((r) => r.statusCode), [202, 202, 202, 202, 202], 'always 202')
  t.equal(new Set(answers.map((r) => r.body)).size, 1, 'always the same body')
  await app.settled()
  t.equal(inbox.mails.filter((m) => /reset-password/.test(m.text ?? '')).length, 3, 'three mails, no more')
})

t.test('an unknown address does not answer measurably faster than a known one', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const time = async (email: string) => {
    const started = process.hrtime.bigint()
    const res = await post(app, '/auth/password-reset', { email })
    if (res.statusCode !== 202) throw new Error(String(res.statusCode))
    return Number(process.hrtime.bigint() - started) / 1e6
  }
  const known: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 21; i++) {
    known.push(await time(user.email))
    unknown.push(await time(`nobody${i}@example.com`))
    await app.settled()
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  t.comment(`median known ${median(known).toFixed(2)} ms, unknown ${median(unknown).toFixed(2)} ms`)
  // The work that depends on the address runs after the answer: both are the same few steps. What
  // must not happen is the unknown address answering faster (it would tell that nobody has it).
  t.ok(median(unknown) > median(known) - 5, 'an unknown address is not faster by more than 5 ms (median of 21)')
})

t.test('links come from APP_URL only, never from a forged Host or X-Forwarded-Host', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  t.equal((await post(app, '/auth/password-reset', { email: user.email }, {
    host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http'
  })).statusCode, 202)
  const mail = await waitForMail(inbox, user.email, (m) => /reset-password/.test(m.text ?? ''))
  t.notMatch(mail.text ?? '', /evil\.example/, 'the text part names no forged host')
  t.notMatch(String(mail.html), /evil\.example/, 'nor does the HTML part')
  t.equal(linkOf(mail).link.origin, APP_URL)
})

t.test('e-mail change: re-authenticated, confirmed from the new address, noticed at the old one', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const taken = await register(app, inbox)
  const { access } = await login(app, user.username)
  const change = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/users/me/email', headers: bearer(access), payload })

  isError(t, await change({ new_email: 'new@example.com', current_password: 'not my password' }), 400, 'Password is incorrect', 'a wrong password: 400')
  const local = 'a'.repeat(64)
  const domain = `${'b'.repeat(61)}.${'c'.repeat(61)}.${'d'.repeat(61)}.com`
  for (const [what, payload, message] of [
    ['not an address', { new_email: 'not-an-email', current_password: PASSWORD }, 'body/new_email must match format "email"'],
    ['255 characters', { new_email: `a${local}@${domain}`, current_password: PASSWORD }, 'body/new_email must NOT have more than 254 characters'],
    ['no password', { new_email: 'new@example.com' }, 'body must have required property \'current_password\''],
    ['an unknown field', { new_email: 'new@example.com', current_password: PASSWORD, email_verified: true }, 'body has an unknown property "email_verified"']
  ] as const) {
    isError(t, await change(payload), 400, message, `${what}: 400`)
  }
  // The taken address first: a later request voids earlier e-mail-change links, taken address or not.
  const busy = await change({ new_email: taken.email, current_password: PASSWORD })
  const free = await change({ new_email: 'New@Example.com', current_password: PASSWORD })
  t.equal(free.statusCode, 202)
  t.equal(busy.body, free.body, 'the same answer whether or not another account has the address')
  t.equal(busy.statusCode, 202)
  const mail = await waitForMail(inbox, 'new@example.com', (m) => /verify-email/.test(m.text ?? ''))
  await app.settled()
  t.equal(inbox.mails.filter((m) => JSON.stringify(m.to).includes(taken.email)).length, 1, 'the holder of the taken address got only their own verification mail')
  t.equal((await me(app, access)).email, user.email, 'nothing changes before the link is followed')

  t.equal((await post(app, '/auth/verify-email', { token: linkOf(mail).token })).statusCode, 204)
  const now = await me(app, access)
  t.equal(now.email, 'new@example.com', 'the address changed')
  t.equal(now.email_verified, true, 'verified')
  const notice = await waitForMail(inbox, user.email, (m) => /changed/i.test(m.subject ?? ''))
  t.notMatch(notice.text ?? '', /new@example\.com/, 'the notice to the old address masks the new one')
  invalidToken(t, await post(app, '/auth/verify-email', { token: linkOf(user.mail).token }), 'the old address\'s verification link is void')
  isError(t, await app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(access), payload: { email: 'x@example.com' } }), 400, 'body has an unknown property "email"', 'PATCH /users/me refuses an email')
})

t.test('REQUIRE_VERIFIED_EMAIL=true: active-user routes answer 403 until the address is verified', async (t) => {
  const { app, inbox } = await withMail(t, { REQUIRE_VERIFIED_EMAIL: 'true' })
  const user = await register(app, inbox)
  const { access } = await login(app, user.username)
  const write = () => app.inject({ method: 'POST', url: '/posts', headers: bearer(access), payload: { title: 'Hello', content: 'World' } })
  isError(t, await write(), 403, 'Email not verified', 'unverified: 403')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(access) })).statusCode, 200, 'GET /users/me still answers')
  t.equal((await post(app, '/auth/verify-email', { token: linkOf(user.mail).token })).statusCode, 204)
  t.equal((await write()).statusCode, 201, 'verified: the write goes through')
})

t.test('a mail server that refuses, or hangs, never delays or fails the request', async (t) => {
  // Each server holds its first reply until the request has answered: a request that waited for the
  // mail would never answer, so the answer arriving at all is the proof (no clock involved).
  const held: Array<() => void> = []
  let refusals = 0
  const refusing = await smtpServer(t, {
    onRcptTo (_address, _session, callback) {
      const refuse = () => { refusals++; callback(reply(451, 'try later')) }
      if (refusals === 0 && held.length === 0) held.push(refuse)
      else refuse()
    }
  })
  const { app } = await withMail(t, {}, refusing)
  const res = await post(app, '/auth/register', { email: 'refused@example.com', username: 'refused_one', password: PASSWORD })
  const refusalsWhenAnswered = refusals
  t.equal(res.statusCode, 201, 'registration answers 201 while the mail server holds its reply')
  t.equal(refusalsWhenAnswered, 0, 'no refusal had come when the request answered')
  while (held.length === 0) await sleep(5)
  held.shift()!()
  await app.settled()
  t.equal(refusals, 3, 'the mailer tried three times (two retries), then gave up')

  const greetings: Array<() => void> = []
  const hanging = await smtpServer(t, { onConnect (_session, callback) { greetings.push(() => callback()) } })
  const stuck = await withMail(t, {}, hanging)
  t.equal((await post(stuck.app, '/auth/register', { email: 'hung@example.com', username: 'hung_one', password: PASSWORD })).statusCode, 201,
    'registration answers 201 while the mail server has not greeted')
  t.equal((await post(stuck.app, '/auth/password-reset', { email: 'hung@example.com' })).statusCode, 202, 'so does a reset request')
  while (greetings.length === 0) await sleep(5)
  t.equal(hanging.mails.length, 0, 'nothing delivered yet')
  for (const greet of greetings.splice(0)) greet()
  // Later connections (the second mail) greet at once.
  const late = setInterval(() => { for (const greet of greetings.splice(0)) greet() }, 5)
  t.teardown(() => clearInterval(late))
  await stuck.app.settled()
  t.equal(hanging.mails.length, 2, 'both mails (verification, reset) delivered once the server greets')
})

t.test('without SMTP_URL each mail is an .eml file in MAIL_OUTBOX_DIR and its link is logged', async (t) => {
  const lines: string[] = []
  const { Writable } = await import('node:stream')
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } })
  const app = await build(t, { APP_URL, LOG_LEVEL: 'info' }, { logStream: stream })
  const res = await post(app, '/auth/register', { email: 'outbox@example.com', username: 'outbox_user', password: PASSWORD })
  t.equal(res.statusCode, 201)
  await app.settled()
  const dir = app.config.mailOutboxDir
  const files = readdirSync(dir).filter((f) => f.endsWith('.eml'))
  t.equal(files.length, 1, 'one .eml file')
  const mail = await simpleParser(readFileSync(`${dir}/${files[0]}`))
  t.match(JSON.stringify(mail.to), /outbox@example\.com/, 'addressed to the new account')
  const { token } = linkOf(mail)
  t.ok(lines.some((l) => l.includes(`${APP_URL}/verify-email?token=${token}`)), 'the link is in the log')
  t.equal((await post(app, '/auth/verify-email', { token })).statusCode, 204, 'and it works')
})

t.test('a reset link mailed to the old address dies when an e-mail change is confirmed', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  const { access } = await login(app, user.username)
  t.equal((await post(app, '/auth/password-reset', { email: user.email })).statusCode, 202)
  const reset = linkOf(await waitForMail(inbox, user.email, (m) => /reset-password/.test(m.text ?? ''))).token

  t.equal((await post(app, '/users/me/email', { new_email: 'moved@example.com', current_password: PASSWORD }, bearer(access))).statusCode, 202)
  const change = linkOf(await waitForMail(inbox, 'moved@example.com', (m) => /verify-email/.test(m.text ?? ''))).token
  t.equal((await post(app, '/auth/verify-email', { token: change })).statusCode, 204, 'the change is confirmed')
  invalidToken(t, await post(app, '/auth/password-reset/confirm', { token: reset, new_password: NEW_PASSWORD }), 'the reset link sent to the old address')
  t.equal((await post(app, '/auth/token', { username: user.username, password: PASSWORD })).statusCode, 200, 'the password is unchanged')
})

t.test('a reset request past the hourly cap changes nothing: the last mailed link still works', async (t) => {
  const { app, inbox } = await withMail(t)
  const user = await register(app, inbox)
  for (let i = 0; i < 3; i++) t.equal((await post(app, '/auth/password-reset', { email: user.email })).statusCode, 202, `request ${i + 1}`)
  await app.settled()
  const mails = inbox.mails.filter((m) => JSON.stringify(m.to).includes(user.email) && /reset-password/.test(m.text ?? ''))
  t.equal(mails.length, 3, 'three links mailed')
  const last = linkOf(mails[2]!).token
  for (let i = 0; i < 3; i++) t.equal((await post(app, '/auth/password-reset', { email: user.email })).statusCode, 202, `a stranger's request ${i + 4}: still 202`)
  await app.settled()
  t.equal(inbox.mails.filter((m) => /reset-password/.test(m.text ?? '')).length, 3, 'nothing mailed past the cap')
  t.equal((await post(app, '/auth/password-reset/confirm', { token: last, new_password: NEW_PASSWORD })).statusCode, 204, 'the owner\'s last link still works')
})

t.test('an e-mail-change request voids earlier links the same way whether or not the address is taken', async (t) => {
  const { app, inbox } = await withMail(t)
  const holder = await register(app, inbox)
  // One account a case: three e-mail-change mails an hour each.
  for (const [what, next] of [['a taken address', holder.email], ['a free address', 'another.free@example.com']] as const) {
    const user = await register(app, inbox)
    const { access } = await login(app, user.username)
    const change = (email: string) => post(app, '/users/me/email', { new_email: email, current_password: PASSWORD }, bearer(access))
    const target = `first.${what.replace(/\W/g, '')}@example.com`
    t.equal((await change(target)).statusCode, 202)
    const earlier = linkOf(await waitForMail(inbox, target, (m) => /verify-email/.test(m.text ?? ''))).token
    t.equal((await change(next)).statusCode, 202, `then a request for ${what}`)
    await app.settled()
    invalidToken(t, await post(app, '/auth/verify-email', { token: earlier }), `after a request for ${what}, the earlier link is void`)
  }
})

t.test('used, voided and expired link records are deleted, not kept', async (t) => {
  const { app, inbox } = await withMail(t, { PASSWORD_RESET_TTL: '1' })
  const user = await register(app, inbox)
  const rows = async () => (await app.db.q.select().from(app.db.t.accountTokens)).length
  t.equal(await rows(), 1, 'the registration\'s verification link')
  t.equal((await post(app, '/auth/verify-email', { token: linkOf(user.mail).token })).statusCode, 204)
  t.equal(await rows(), 0, 'a used link is gone')
  t.equal((await post(app, '/auth/password-reset', { email: user.email })).statusCode, 202)
  const expired = linkOf(await waitForMail(inbox, user.email, (m) => /reset-password/.test(m.text ?? ''))).token
  t.equal(await rows(), 1)
  await new Promise((resolve) => setTimeout(resolve, 1100))
  invalidToken(t, await post(app, '/auth/password-reset/confirm', { token: expired, new_password: NEW_PASSWORD }), 'an expired link')
  const other = await register(app, inbox)
  t.same((await app.db.q.select().from(app.db.t.accountTokens)).map((r) => r.userId), [other.id],
    'the next link issued, for anyone, sweeps the expired one: only the new account\'s link is left')
})
