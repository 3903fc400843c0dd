import { and, eq, gt, inArray, isNull } from 'drizzle-orm'
import type { Database } from '../db/index.js'
import type { TokenPurpose } from '../db/roles.js'
import { newId, tokenHash, unixNow } from './sessions.js'

/** 256 random bits, base64url: what a mailed link carries. Only its SHA-256 is stored. */
const TOKEN_BYTES = 32

export interface IssuedToken { token: string, email: string }

/**
 * Issues a single-use link token for `purpose`, voiding the user's earlier unused ones of the same
 * purpose (a newer request supersedes older links). Call inside a transaction.
 */
export async function issueAccountToken (tx: Database, userId: number, purpose: TokenPurpose, email: string, ttl: number): Promise<IssuedToken> {
  const { accountTokens } = tx.t
  const at = unixNow()
  await voidAccountTokens(tx, userId, [purpose])
  const token = newId(TOKEN_BYTES)
  await tx.q.insert(accountTokens).values({ userId, purpose, email, tokenHash: tokenHash(token), createdAt: at, expiresAt: at + ttl })
  return { token, email }
}

/** Marks every unused token of these purposes used: their links stop working. Call inside a transaction. */
export async function voidAccountTokens (tx: Database, userId: number, purposes: TokenPurpose[]): Promise<void> {
  const { accountTokens } = tx.t
  await tx.q.update(accountTokens).set({ usedAt: unixNow() })
    .where(and(eq(accountTokens.userId, userId), inArray(accountTokens.purpose, purposes), isNull(accountTokens.usedAt)))
}

/**
 * Spends a token: one conditional update, so of two concurrent uses exactly one gets the token's
 * user and address; an unknown, used, voided or expired token gives undefined. Call inside a transaction.
 */
export async function consumeAccountToken (tx: Database, token: string, purposes: TokenPurpose[]): Promise<{ userId: number, email: string, purpose: TokenPurpose } | undefined> {
  const { accountTokens } = tx.t
  const at = unixNow()
  const [row] = await tx.q.update(accountTokens).set({ usedAt: at })
    .where(and(
      eq(accountTokens.tokenHash, tokenHash(token)),
      inArray(accountTokens.purpose, purposes),
      isNull(accountTokens.usedAt),
      gt(accountTokens.expiresAt, at)
    ))
    .returning({ userId: accountTokens.userId, email: accountTokens.email, purpose: accountTokens.purpose })
  return row
}
