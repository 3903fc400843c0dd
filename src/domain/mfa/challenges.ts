import { and, eq, gt, lt, sql } from 'drizzle-orm'
import type { Database } from '../../db/index.js'
import { newId, tokenHash, unixNow } from '../ids.js'

/** How long the `mfa_token` of a login's first step lives, and how many wrong codes it survives. */
export const MFA_TOKEN_TTL = 5 * 60
export const MFA_TOKEN_MAX_FAILURES = 5

export interface MfaChallenge { id: string, userId: number, passwordHash: string }

/**
 * The first step of a login with a second factor: an opaque token (256 random bits, stored as its
 * SHA-256), bound to the account and to the password hash that was verified, so a password change
 * or reset voids it. Expired ones are swept here.
 */
export async function createMfaChallenge (db: Database, userId: number, passwordHash: string): Promise<string> {
  const { mfaChallenges } = db.t
  const token = newId(32)
  const at = unixNow()
  await db.transaction(async (tx) => {
    await tx.q.delete(mfaChallenges).where(lt(mfaChallenges.expiresAt, at))
    await tx.q.insert(mfaChallenges).values({ id: tokenHash(token), userId, passwordHash, expiresAt: at + MFA_TOKEN_TTL })
  })
  return token
}

/**
 * Counts one attempt at a code against the token's challenge before the code is checked, in one
 * conditional update: of any number of attempts sent at once, at most 5 get the challenge back; the
 * rest, and an expired or unknown token, get undefined. A right code then spends it.
 */
export async function reserveMfaAttempt (db: Database, token: string): Promise<MfaChallenge | undefined> {
  const { mfaChallenges } = db.t
  const [row] = await db.transaction((tx) => tx.q.update(mfaChallenges).set({ failures: sql`${mfaChallenges.failures} + 1` })
    .where(and(eq(mfaChallenges.id, tokenHash(token)), gt(mfaChallenges.expiresAt, unixNow()), lt(mfaChallenges.failures, MFA_TOKEN_MAX_FAILURES)))
    .returning({ id: mfaChallenges.id, userId: mfaChallenges.userId, passwordHash: mfaChallenges.passwordHash }))
  return row
}

/** Spends the challenge: one delete, so of two completions exactly one wins. Call inside a transaction. */
export async function spendMfaChallenge (tx: Database, id: string): Promise<boolean> {
  const { mfaChallenges } = tx.t
  const spent = await tx.q.delete(mfaChallenges).where(eq(mfaChallenges.id, id)).returning({ id: mfaChallenges.id })
  return spent.length > 0
}
