import { eq, sql } from 'drizzle-orm'
import type { Database, UserRow } from '../db/index.js'
import { consumeAccountToken, issueAccountToken, voidAccountTokens } from './account-tokens.js'
import { recordAudit } from './audit.js'
import { errors } from './errors.js'
import { revokeAllSessions } from './sessions.js'
import { normalizeEmail } from './users.js'

// The account lifecycle behind the mailed links: password reset, e-mail verification and change.
// Each step that spends a link does it in the transaction of the change it makes.

/** A reset link token for the account (voiding its earlier reset links). */
export async function startPasswordReset (db: Database, user: Pick<UserRow, 'id' | 'email'>, ttl: number): Promise<string> {
  return (await db.transaction((tx) => issueAccountToken(tx, user.id, 'password_reset', user.email, ttl))).token
}

/**
 * Spends a reset link: the password becomes `passwordHash`, every session ends, every other reset or
 * e-mail-change link dies, and the audit log records it. The link proves the address too, so an
 * unverified address it was sent to becomes verified. Returns the user's id.
 */
export async function resetPassword (db: Database, token: string, passwordHash: string, ip: string | null): Promise<number> {
  const { users } = db.t
  return await db.transaction(async (tx) => {
    const spent = await consumeAccountToken(tx, token, ['password_reset'])
    if (spent === undefined) throw errors.invalidLinkToken()
    await tx.q.update(users).set({
      passwordHash,
      emailVerified: sql`${users.emailVerified} or ${users.email} = ${spent.email}`,
      updatedAt: new Date().toISOString()
    }).where(eq(users.id, spent.userId))
    await revokeAllSessions(tx, spent.userId)
    await voidAccountTokens(tx, spent.userId, ['password_reset', 'email_change'])
    await recordAudit(tx, { actorId: spent.userId, ip }, { action: 'password_reset', targetType: 'user', targetId: spent.userId, details: {} })
    return spent.userId
  })
}

/** A verification link token for the user's current address; 409 when it is verified already. */
export async function startVerification (db: Database, user: Pick<UserRow, 'id' | 'email' | 'emailVerified'>, ttl: number): Promise<string> {
  if (user.emailVerified) throw errors.emailAlreadyVerified()
  return (await db.transaction((tx) => issueAccountToken(tx, user.id, 'verify_email', user.email, ttl))).token
}

/**
 * A confirmation link token for a new address, or undefined when another account holds it (nothing
 * is sent then). Either way the earlier e-mail-change links die, so what becomes of them tells
 * nothing about whether the address is taken.
 */
export async function startEmailChange (db: Database, userId: number, newEmail: string, ttl: number): Promise<string | undefined> {
  const email = normalizeEmail(newEmail)
  return await db.transaction(async (tx) => {
    const { users } = tx.t
    const [holder] = await tx.q.select({ id: users.id }).from(users).where(eq(users.email, email))
    if (holder !== undefined) {
      await voidAccountTokens(tx, userId, ['email_change'])
      return undefined
    }
    return (await issueAccountToken(tx, userId, 'email_change', email, ttl)).token
  })
}

export interface ConfirmedEmail { userId: number, email: string, previous: string }

/**
 * Spends a verification or e-mail-change link: the address it was sent to becomes the account's,
 * verified. A verification link for an address the account no longer has is refused like a used one.
 * 409 when another account took the address in the meantime. `previous` differs from `email` on a change.
 */
export async function confirmEmail (db: Database, token: string, ip: string | null): Promise<ConfirmedEmail> {
  const { users } = db.t
  try {
    return await db.transaction(async (tx) => {
      const spent = await consumeAccountToken(tx, token, ['verify_email', 'email_change'])
      if (spent === undefined) throw errors.invalidLinkToken()
      const [user] = await tx.q.select().from(users).where(eq(users.id, spent.userId))
      if (user === undefined || (spent.purpose === 'verify_email' && spent.email !== user.email)) throw errors.invalidLinkToken()
      await tx.q.update(users).set({ email: spent.email, emailVerified: true, updatedAt: new Date().toISOString() }).where(eq(users.id, user.id))
      if (spent.email !== user.email) {
        // A reset link mailed to the old address must not outlive the change either.
        await voidAccountTokens(tx, user.id, ['verify_email', 'email_change', 'password_reset'])
        await recordAudit(tx, { actorId: user.id, ip }, {
          action: 'user.email_change', targetType: 'user', targetId: user.id, details: {}
        })
      }
      return { userId: user.id, email: spent.email, previous: user.email }
    })
  } catch (err) {
    if (db.isUniqueViolation(err)) throw errors.emailTaken()
    throw err
  }
}
