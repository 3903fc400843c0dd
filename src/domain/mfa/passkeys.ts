import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type AuthenticatorTransportFuture, type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON
} from '@simplewebauthn/server'
import { and, count, desc, eq, gt, isNull, lt, sql, type SQL } from 'drizzle-orm'
import type { Database } from '../../db/index.js'
import { recordAudit, type AuditContext } from '../audit.js'
import { errors } from '../errors.js'
import { toPage, type PageRequest } from '../pagination.js'
import { unixNow } from '../ids.js'

/** Where passkeys are valid: the relying party's id (a domain) and the exact origin pages come from. */
export interface RelyingParty { id: string, origin: string, name: string }

/** WebAuthn challenges are single use and expire after 5 minutes (the ceremony's own timeout too). */
export const CHALLENGE_TTL = 5 * 60

type Purpose = 'register' | 'login'

async function storeChallenge (db: Database, challenge: string, purpose: Purpose, userId: number | null): Promise<void> {
  const { webauthnChallenges } = db.t
  const at = unixNow()
  await db.transaction(async (tx) => {
    await tx.q.delete(webauthnChallenges).where(lt(webauthnChallenges.expiresAt, at))
    await tx.q.insert(webauthnChallenges).values({ challenge, purpose, userId, expiresAt: at + CHALLENGE_TTL })
  })
}

/**
 * Spends a challenge: one delete, so it is accepted once, by whichever process gets there first.
 * True only for a live challenge of this purpose (and of this user, for a registration).
 */
async function spendChallenge (db: Database, challenge: string, purpose: Purpose, userId: number | null): Promise<boolean> {
  const { webauthnChallenges } = db.t
  const owner: SQL = userId === null ? isNull(webauthnChallenges.userId) : eq(webauthnChallenges.userId, userId)
  const spent = await db.transaction((tx) => tx.q.delete(webauthnChallenges)
    .where(and(eq(webauthnChallenges.challenge, challenge), eq(webauthnChallenges.purpose, purpose), owner, gt(webauthnChallenges.expiresAt, unixNow())))
    .returning({ challenge: webauthnChallenges.challenge }))
  return spent.length > 0
}

const transportsOf = (stored: string) => (stored === '' ? [] : stored.split(',')) as AuthenticatorTransportFuture[]

/** Creation options for a new passkey of the user (a discoverable credential, user verification required), excluding theirs. */
export async function registrationOptions (db: Database, rp: RelyingParty, user: { id: number, username: string }): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { passkeys } = db.t
  const existing = await db.q.select({ id: passkeys.credentialId, transports: passkeys.transports }).from(passkeys).where(eq(passkeys.userId, user.id))
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.username,
    // The user handle: the account's id, which names no one (WebAuthn asks that it hold no personal data).
    userID: new TextEncoder().encode(String(user.id)),
    timeout: CHALLENGE_TTL * 1000,
    attestationType: 'none',
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' }
  })
  await storeChallenge(db, options.challenge, 'register', user.id)
  return options
}

export interface PasskeyView { id: number, name: string, created_at: string, last_used_at: string | null }

const view = (row: { id: number, name: string, createdAt: string, lastUsedAt: string | null }): PasskeyView =>
  ({ id: row.id, name: row.name, created_at: row.createdAt, last_used_at: row.lastUsedAt })

/**
 * Verifies a registration ceremony against a challenge this user was given, and stores the passkey.
 * A bad, replayed, expired or foreign challenge, a wrong origin or rp id, or no user verification → 400.
 * Audited as `mfa_passkey_added`.
 */
export async function registerPasskey (db: Database, rp: RelyingParty, userId: number, name: string, response: RegistrationResponseJSON, context: AuditContext): Promise<PasskeyView> {
  const { passkeys } = db.t
  let credential
  try {
    const verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: (challenge) => spendChallenge(db, challenge, 'register', userId),
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: true
    })
    if (!verified.verified) throw new Error('not verified')
    credential = verified.registrationInfo.credential
  } catch (err) {
    throw errors.passkeyRejected(err instanceof Error ? err.message.slice(0, 200) : 'invalid response')
  }
  const createdAt = new Date().toISOString()
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx.q.insert(passkeys).values({
        userId,
        credentialId: credential.id,
        publicKey: Buffer.from(credential.publicKey).toString('base64url'),
        counter: credential.counter,
        transports: (credential.transports ?? []).join(','),
        name,
        createdAt
      }).returning()
      await tx.q.update(tx.t.users).set({ mfaPasskeys: sql`${tx.t.users.mfaPasskeys} + 1` }).where(eq(tx.t.users.id, userId))
      await recordAudit(tx, context, { action: 'mfa_passkey_added', targetType: 'user', targetId: userId, details: { passkey_id: row!.id } })
      return view(row!)
    })
  } catch (err) {
    if (db.isUniqueViolation(err)) throw errors.passkeyRejected('this passkey is registered already')
    throw err
  }
}

/** Request options for a login with any discoverable passkey of this site. */
export async function authenticationOptions (db: Database, rp: RelyingParty): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const options = await generateAuthenticationOptions({ rpID: rp.id, userVerification: 'required', timeout: CHALLENGE_TTL * 1000 })
  await storeChallenge(db, options.challenge, 'login', null)
  return options
}

/**
 * Verifies a login ceremony: a live login challenge (spent now), a known credential, its signature,
 * origin, rp id, user verification, and a signature counter that moved forward (a cloned
 * authenticator's replays are refused). Returns the user's id, or undefined for any failure.
 */
export async function verifyPasskeyLogin (db: Database, rp: RelyingParty, response: AuthenticationResponseJSON): Promise<number | undefined> {
  const { passkeys } = db.t
  const [stored] = await db.q.select().from(passkeys).where(eq(passkeys.credentialId, response.id))
  if (stored === undefined) return undefined
  let newCounter: number
  try {
    const verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: (challenge) => spendChallenge(db, challenge, 'login', null),
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: {
        id: stored.credentialId,
        publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')),
        counter: stored.counter,
        transports: transportsOf(stored.transports)
      },
      requireUserVerification: true
    })
    if (!verified.verified) return undefined
    newCounter = verified.authenticationInfo.newCounter
  } catch {
    return undefined
  }
  // Conditional on the counter read above: of two logins racing with one signature, one moves it.
  const moved = await db.transaction((tx) => tx.q.update(passkeys).set({ counter: newCounter, lastUsedAt: new Date().toISOString() })
    .where(and(eq(passkeys.id, stored.id), eq(passkeys.counter, stored.counter))).returning({ id: passkeys.id }))
  return moved.length > 0 ? stored.userId : undefined
}

export async function listPasskeys (db: Database, userId: number, page: PageRequest) {
  const { passkeys } = db.t
  const [rows, [counted]] = await Promise.all([
    db.q.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(desc(passkeys.id)).limit(page.limit).offset(page.skip),
    db.q.select({ n: count() }).from(passkeys).where(eq(passkeys.userId, userId))
  ])
  return toPage(rows.map(view), counted?.n ?? 0, page)
}

/** Removes one of the user's passkeys; another user's or an unknown one → 404. Audited as `mfa_passkey_removed`. */
export async function deletePasskey (db: Database, userId: number, passkeyId: number, context: AuditContext): Promise<void> {
  const { passkeys } = db.t
  await db.transaction(async (tx) => {
    const gone = await tx.q.delete(passkeys).where(and(eq(passkeys.id, passkeyId), eq(passkeys.userId, userId))).returning({ id: passkeys.id })
    if (gone.length === 0) throw errors.passkeyNotFound()
    await tx.q.update(tx.t.users).set({ mfaPasskeys: sql`${tx.t.users.mfaPasskeys} - 1` }).where(eq(tx.t.users.id, userId))
    await recordAudit(tx, context, { action: 'mfa_passkey_removed', targetType: 'user', targetId: userId, details: { passkey_id: passkeyId } })
  })
}
