// Passwords are prepared as RFC 8265's OpaqueString before they are checked or hashed, and hashes made
// before that keep working (and are replaced on the next login).
import { hash } from '@node-rs/argon2'
import { eq } from 'drizzle-orm'
import t from 'tap'
import type { App } from '../../src/app.js'
import { ARGON2_OPTIONS, checkPassword, preparePassword } from '../../src/domain/passwords.js'
import { build, isError, PASSWORD } from '../helper.js'

let n = 0
const register = (app: App, password: string) => {
  const i = ++n
  return app.inject({ method: 'POST', url: '/auth/register', payload: { email: `pw${i}@example.com`, username: `pw_${i}`, password } })
}
const login = (app: App, username: string, password: string) =>
  app.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })

t.test('refused: control characters, and fewer than 8 visible characters', async (t) => {
  const app = await build(t)
  const VISIBLE = 'Password must have at least 8 visible characters (spaces, invisible characters, blank fillers and combining marks do not count)'
  const cases: Array<[string, string, string]> = [
    ['eight Braille blanks (U+2800)', '\u2800'.repeat(8), VISIBLE],
    ['Hangul fillers (U+3164, U+115F, U+1160, U+FFA0)', 'ab\u3164\u115F\u1160\uFFA0'.repeat(2) + 'cd', VISIBLE],
    ['a letter followed by combining marks', 'a' + '\u0301\u0308\u0323'.repeat(4), VISIBLE],
    ['seven letters and a lone combining mark', 'abcdefg\u20DD', VISIBLE],
    ['eight spaces', ' '.repeat(8), 'Password must have at least 8 visible characters (spaces, invisible characters, blank fillers and combining marks do not count)'],
    ['non-breaking and ideographic spaces', '\u00a0\u3000'.repeat(5), 'Password must have at least 8 visible characters (spaces, invisible characters, blank fillers and combining marks do not count)'],
    ['zero-width characters around three letters', `\u200babc${'\u200b\u200d\u2060\ufeff'.repeat(3)}`, 'Password must have at least 8 visible characters (spaces, invisible characters, blank fillers and combining marks do not count)'],
    ['seven letters padded with spaces', '  abcdefg  ', 'Password must have at least 8 visible characters (spaces, invisible characters, blank fillers and combining marks do not count)'],
    ['a bell character', 'long enough\u0007password', 'Password must not contain control characters'],
    ['a newline', 'long enough\npassword', 'Password must not contain control characters'],
    ['a tab', 'long enough\tpassword', 'Password must not contain control characters'],
    ['a common password in full-width letters', '\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13', 'This password is too common; choose another one'],
    ['a common password in capitals with spaces around', '  PASSWORD123  ', 'This password is too common; choose another one']
  ]
  for (const [what, password, message] of cases) {
    isError(t, await register(app, password), 400, message, what)
  }
  const { users } = app.db.t
  t.equal((await app.db.q.select({ id: users.id }).from(users)).length, 0, 'no account was made')
  t.equal((await register(app, 'eight chars')).statusCode, 201, 'eight visible characters with a space inside: fine')
  t.equal((await register(app, 'ca\u0301fe\u0301 cre\u0300me')).statusCode, 201, 'letters with accents typed as combining marks: each letter counts once')
})

t.test('the same password typed with another space or another Unicode composition logs in', async (t) => {
  const app = await build(t)
  const withNbsp = 'caf\u00e9\u00a0au lait please'
  const res = await register(app, withNbsp)
  t.equal(res.statusCode, 201)
  const { username } = res.json()
  const typings: Array<[string, string]> = [
    ['as registered', withNbsp],
    ['with an ordinary space', 'caf\u00e9 au lait please'],
    ['with a narrow no-break space', 'caf\u00e9\u202fau lait please'],
    ['decomposed (e + combining acute)', 'cafe\u0301\u00a0au lait please']
  ]
  for (const [what, typed] of typings) t.equal((await login(app, username, typed)).statusCode, 200, what)
  t.equal((await login(app, username, 'cafe au lait please')).statusCode, 401, 'but not without the accent')
  t.equal((await login(app, username, 'Caf\u00e9 au lait please')).statusCode, 401, 'nor in another case')
})

t.test('a hash of the password as typed (before preparation) still logs in, and is replaced by the prepared form\'s', async (t) => {
  const app = await build(t)
  const typed = 'legacy\u00a0pass\u2003phrase'
  const res = await register(app, PASSWORD)
  const { id, username } = res.json()
  const { users } = app.db.t
  const legacy = await hash(typed, ARGON2_OPTIONS)
  await app.db.transaction((tx) => tx.q.update(users).set({ passwordHash: legacy }).where(eq(users.id, id)))

  t.equal((await login(app, username, typed)).statusCode, 200, 'the old hash verifies the password as typed')
  await app.settled()
  const [row] = await app.db.q.select({ hash: users.passwordHash }).from(users).where(eq(users.id, id))
  t.not(row?.hash, legacy, 'the hash was replaced')
  t.same(await checkPassword(row!.hash, preparePassword(typed)), { valid: true, rehash: false }, 'by the prepared form\'s')
  t.equal((await login(app, username, 'legacy pass phrase')).statusCode, 200, 'so ordinary spaces now log in too')
  t.equal((await login(app, username, 'legacy passphrase')).statusCode, 401, 'and a wrong password still does not')
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
  isError(t, common, 400, 'This password is too common; choose another one', '"password", exactly 8 characters')
})
