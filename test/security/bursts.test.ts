// The failure limit under bursts, tried as an attacker would: many wrong passwords or codes for one
// account sent at once. Each attempt is counted before it is checked, so however many arrive together,
// at most LOGIN_FAILURE_LIMIT are checked and the rest answer 429. Runs on SQLite (the in-process
// counter) and, with TEST_ENGINE=postgres, on PostgreSQL with the counter in Redis.
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { build, loginAs, PASSWORD } from '../helper.js'
import { enableTotp, mfaToken, totpCode } from '../support/mfa.js'

const LIMIT = 10

/** Fires `n` requests at once; tallies how many were checked (answered `checked`) and refused (429). */
async function burst (t: Test, n: number, send: (i: number) => Promise<LightMyRequestResponse>, checked: (res: LightMyRequestResponse) => boolean) {
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => send(i)))
  const tally = { checked: answers.filter(checked).length, throttled: answers.filter((r) => r.statusCode === 429).length }
  t.equal(tally.checked + tally.throttled, n, `every one of ${n} answered: checked or 429`, { statuses: [...new Set(answers.map((r) => `${r.statusCode} ${r.body.slice(0, 80)}`))] })
  t.ok(tally.checked <= LIMIT, `at most ${LIMIT} of ${n} were checked (${tally.checked})`)
  t.ok(answers.filter((r) => r.statusCode === 429).every((r) => Number(r.headers['retry-after']) > 0), 'each 429 with Retry-After')
  return tally
}

const code = (res: LightMyRequestResponse) => (res.json() as { code?: string }).code
const wrongPassword = (res: LightMyRequestResponse) => res.statusCode === 400 && code(res) === 'WRONG_PASSWORD'

async function setup (t: Test): Promise<App> {
  return await build(t, { LOGIN_FAILURE_LIMIT: String(LIMIT) })
}

t.test('logins: 60 wrong passwords at once, by username, e-mail and in capitals, one count', async (t) => {
  const app = await setup(t)
  const ada = await loginAs(app)
  const names = [ada.username, ada.email, ada.username.toUpperCase()]
  const tally = await burst(t, 60, (i) => app.inject({ method: 'POST', url: '/auth/token', payload: { username: names[i % 3], password: `wrong guess ${i}` } }),
    (res) => res.statusCode === 401 && code(res) === 'INVALID_LOGIN')
  t.equal(tally.checked, LIMIT, 'exactly the limit was checked')
  const owner = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: ada.username, password: PASSWORD } })
  t.equal(owner.statusCode, 429, 'then even the right password waits, from that client')
})

t.test('an unknown account is throttled exactly like a real one under a burst', async (t) => {
  const app = await setup(t)
  const tally = await burst(t, 40, (i) => app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'phantom', password: `wrong guess ${i}` } }),
    (res) => res.statusCode === 401 && code(res) === 'INVALID_LOGIN')
  t.equal(tally.checked, LIMIT)
})

t.test('password change: 150 wrong current passwords at once with a stolen token', async (t) => {
  const app = await setup(t)
  const ada = await loginAs(app)
  await burst(t, 150, (i) => app.inject({
    method: 'PUT', url: '/users/me/password', headers: ada.auth, payload: { current_password: `wrong guess ${i}`, new_password: 'the attacker wants this one' }
  }), (res) => res.statusCode === 400 && code(res) === 'WRONG_PASSWORD')
  const login = await app.inject({ method: 'POST', url: '/auth/token', payload: { username: ada.username, password: PASSWORD }, remoteAddress: '192.0.2.50' })
  t.equal(login.statusCode, 200, 'the password is unchanged: the owner logs in from elsewhere')
})

t.test('account deletion, e-mail change and second-factor routes share the account\'s count', async (t) => {
  const app = await setup(t)
  const ada = await loginAs(app)
  await burst(t, 40, (i) => app.inject({ method: 'DELETE', url: '/users/me', headers: ada.auth, payload: { password: `wrong guess ${i}` } }), wrongPassword)
  const still = await app.inject({ url: '/users/me', headers: ada.auth })
  t.equal(still.statusCode, 200, 'the account is still there')

  const bob = await loginAs(app)
  await burst(t, 40, (i) => app.inject({ method: 'POST', url: '/users/me/email', headers: bob.auth, payload: { new_email: `thief${i}@example.com`, current_password: `wrong guess ${i}` } }), wrongPassword)

  const carol = await loginAs(app)
  await burst(t, 40, (i) => app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: carol.auth, payload: { password: `wrong guess ${i}` } }), wrongPassword)

  const dave = await loginAs(app)
  const started = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: dave.auth, payload: { password: PASSWORD } })
  t.equal(started.statusCode, 200)
  await burst(t, 40, (i) => app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: dave.auth, payload: { code: String(100000 + i * 7) } }),
    (res) => res.statusCode === 400 && code(res) === 'WRONG_CODE')
})

t.test('second step of a login: 40 codes at once against one mfa_token check at most 5', async (t) => {
  const app = await setup(t)
  const ada = await loginAs(app)
  const { secret } = await enableTotp(app, ada)
  const token = await mfaToken(app, ada.username, PASSWORD)
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'mfa_otp', mfa_token: token, otp: String(200000 + i) } })))
  const checked = answers.filter((r) => code(r) === 'INVALID_CODE').length
  t.ok(checked <= 5, `at most 5 codes checked against one mfa_token (${checked})`)
  t.ok(answers.every((r) => ['INVALID_CODE', 'INVALID_MFA_TOKEN', 'LOGIN_THROTTLED'].includes(code(r) ?? '')), 'the rest refused unchecked')
  const right = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'mfa_otp', mfa_token: token, otp: await totpCode(secret) } })
  t.equal(right.statusCode, 401, 'the token is spent: even the right code is refused')
})
