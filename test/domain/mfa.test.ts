// The second-factor domain (src/domain/mfa/, src/domain/login.ts), called directly on a real database:
// what the routes cannot reach (races, states a route checks first) and what they would not show
// (the audit's target, the sealed format, the keyed hashes).
import { eq } from 'drizzle-orm'
import t from 'tap'
import { DomainError } from '../../src/domain/errors.js'
import { MFA_TOKEN_TTL, createMfaChallenge, reserveMfaAttempt, spendMfaChallenge } from '../../src/domain/mfa/challenges.js'
import { normalizeRecoveryCode, spendRecoveryCode } from '../../src/domain/mfa/recovery-codes.js'
import { mfaKeys } from '../../src/domain/mfa/secrets.js'
import { disableTotp, startTotp, verifyTotp } from '../../src/domain/mfa/totp.js'
import { unixNow } from '../../src/domain/ids.js'
import { build, isError, loginAs, PASSWORD, TEST_SECRET } from '../helper.js'
import { enableTotp, mfaGrant, mfaToken, totpCode } from '../support/mfa.js'

const context = { actorId: null, ip: null }
const refusal = (code: string) => ({ constructor: DomainError, code })

t.test('sealed secrets and keyed hashes: a stable format, bound to the user, keyed from the secret', async (t) => {
  const keys = mfaKeys(TEST_SECRET)
  const box = keys.seal('JBSWY3DPEHPK3PXP', 7)
  t.match(box, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/, 'v1.<iv>.<ciphertext>.<tag>')
  t.equal(keys.open(box, 7), 'JBSWY3DPEHPK3PXP', 'opens for its user')
  t.equal(keys.open(box, 8), undefined, 'not for another user\'s row')
  t.equal(keys.open(`v2${box.slice(2)}`, 7), undefined, 'not under another version')
  t.equal(keys.open(box.slice(0, -2) + (box.endsWith('A') ? 'B' : 'A') + box.slice(-1), 7), undefined, 'not when tampered with')
  t.equal(keys.open('v1.only-two', 7), undefined, 'not when parts are missing')
  t.equal(mfaKeys('another secret of at least 32 bytes!!').open(box, 7), undefined, 'not under another key')
  // Pinned: HMAC-SHA256 under HKDF-SHA256(secret, salt "inkwell", info "inkwell:recovery-code:v1").
  t.equal(keys.codeHash(7, 'k7m2q9xp4tfa'), 'MjSze9wWnkeYkm8NiTj_4Ssl-9NoF0cejf9azUc1Y-c', 'the recovery-code hash is the documented derivation')
  t.not(keys.codeHash(8, 'k7m2q9xp4tfa'), keys.codeHash(7, 'k7m2q9xp4tfa'), 'and depends on the user')
})

t.test('recovery codes: read as people type them, refused in any other shape', async (t) => {
  t.equal(normalizeRecoveryCode(' K7M2-Q9XP-4TFA '), 'k7m2q9xp4tfa', 'case, dashes and spaces ignored')
  t.equal(normalizeRecoveryCode('oil0-OIL1-abcd'), '01100111abcd', 'o reads as 0, i and l as 1')
  const app = await build(t)
  const ada = await loginAs(app)
  const { recoveryCodes } = await enableTotp(app, ada)
  const code = recoveryCodes[0]!.replace(/-/g, '')
  for (const shape of [`x${code}`, `${code}x`, code.slice(1), 'not-a-code', '']) {
    t.equal(await app.db.transaction((tx) => spendRecoveryCode(tx, app.mfaKeys, ada.id, shape)), false, `"${shape}" is not a code`)
  }
  isError(t, await mfaGrant(app, await mfaToken(app, ada.username, PASSWORD), 'not-a-code'), 401, 'Invalid code', 'a code of another shape at login')
  t.equal(await app.db.transaction((tx) => spendRecoveryCode(tx, app.mfaKeys, ada.id, code)), true, 'the code itself')

  // A recovery code made only of digits at one end is still a recovery code, not an app's code.
  for (const chosen of ['123456abcdef', 'abcdef123456']) {
    await app.db.transaction((tx) => tx.q.insert(tx.t.recoveryCodes).values({ userId: ada.id, codeHash: app.mfaKeys.codeHash(ada.id, chosen) }))
    t.equal((await mfaGrant(app, await mfaToken(app, ada.username, PASSWORD), chosen)).statusCode, 200, `"${chosen}" logs in as a recovery code`)
  }
  const audit = await app.db.q.select().from(app.db.t.auditLog).where(eq(app.db.t.auditLog.action, 'mfa_recovery_code_used'))
  t.ok(audit.length >= 2 && audit.every((e) => e.targetType === 'user' && e.targetId === ada.id && e.actorId === ada.id), 'each use audited against the user')
})

t.test('TOTP: states a route checks first, the audit\'s target, a code raced against itself', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  t.equal(await verifyTotp(app.db, app.mfaKeys, ada.id, '123456'), false, 'no app: no code is right')
  await t.rejects(disableTotp(app.db, ada.id, context), refusal('TOTP_NOT_ENABLED'), 'turning off what is not on')
  const { secret } = await enableTotp(app, ada)
  await t.rejects(startTotp(app.db, app.mfaKeys, { id: ada.id, email: ada.email }), refusal('TOTP_ALREADY_ENABLED'), 'a new secret while one is on')

  const code = await totpCode(secret)
  const raced = await Promise.all([verifyTotp(app.db, app.mfaKeys, ada.id, code), verifyTotp(app.db, app.mfaKeys, ada.id, code)])
  t.same(raced.filter(Boolean).length, 1, 'the same code twice at once: accepted once')
  t.equal(await verifyTotp(app.db, app.mfaKeys, ada.id, ` ${await totpCode(secret, 1)}`), false, 'the domain takes the code as given (the login trims it)')

  const { totpFactors, auditLog } = app.db.t
  const entries = await app.db.q.select().from(auditLog).where(eq(auditLog.targetId, ada.id))
  t.ok(entries.length > 0 && entries.every((e) => e.targetType === 'user'), 'audit entries name the user as their target')

  await app.db.transaction((tx) => tx.q.update(totpFactors).set({ secret: 'v1.AAAA.AAAA.AAAA' }).where(eq(totpFactors.userId, ada.id)))
  t.equal(await verifyTotp(app.db, app.mfaKeys, ada.id, await totpCode(secret, 1)), false, 'a secret that does not open: no code is right')

  const bob = await loginAs(app)
  const enrolled = await enableTotp(app, bob)
  const login = await mfaGrant(app, await mfaToken(app, bob.username, PASSWORD), ` ${await totpCode(enrolled.secret)} `)
  t.equal(login.statusCode, 200, 'at login an app\'s code may come with spaces around it')
  await disableTotp(app.db, bob.id, context)
  const off = await app.db.q.select().from(auditLog).where(eq(auditLog.action, 'mfa_totp_disabled'))
  t.same(off.map((e) => [e.targetType, e.targetId]), [['user', bob.id]], 'turning off is audited against the user')
})

t.test('the mfa_token: five minutes, five codes, spent once', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const [row] = await app.db.q.select().from(app.db.t.users).where(eq(app.db.t.users.id, ada.id))
  const before = unixNow()
  const token = await createMfaChallenge(app.db, ada.id, row!.passwordHash)
  const [challenge] = await app.db.q.select().from(app.db.t.mfaChallenges)
  t.ok(challenge!.expiresAt >= before + MFA_TOKEN_TTL && challenge!.expiresAt <= unixNow() + MFA_TOKEN_TTL, 'expires 5 minutes after it is made')
  t.equal(MFA_TOKEN_TTL, 300)
  const reserved = await reserveMfaAttempt(app.db, token)
  t.equal(reserved?.userId, ada.id)
  t.equal(await app.db.transaction((tx) => spendMfaChallenge(tx, reserved!.id)), true, 'spent once')
  t.equal(await app.db.transaction((tx) => spendMfaChallenge(tx, reserved!.id)), false, 'not twice')
  t.equal(await reserveMfaAttempt(app.db, token), undefined, 'a spent token gets no more attempts')
})
