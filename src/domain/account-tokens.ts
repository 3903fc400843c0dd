import { and, eq, inArray, lte } from 'drizzle-orm'
import type { Database } from '../db/index.js'
import type { TokenPurpose } from '../db/purposes.js'
import { newId, tokenHash, unixNow } from './ids.js'

/** 256 random bits, base64url: what a mailed link carries. Only its SHA-256 is stored. */
const TOKEN_BYTES = 32

export interface IssuedToken { token: string, email: string }

/**
 * Issues a single-use link token for `purpose`, voiding the user's earlier ones of the same purpose
 * (a newer request supersedes older links), and deleting expired ones. Call inside a transaction.
 */
export async function issueAccountToken (tx: Database, userId: number, purpose: TokenPurpose, email: string, ttl: number): Promise<IssuedToken> {
  const { accountTokens } = tx.t
  const at = unixNow()
  await voidAccountTokens(tx, userId, [purpose])
  // Every expired link goes, whoever's: a link record is kept only while it can still be used.
  await tx.q.delete(accountTokens).where(lte(accountTokens.expiresAt, at))
  const token = newId(TOKEN_BYTES)
  await tx.q.insert(accountTokens).values({ userId, purpose, email, tokenHash: tokenHash(token), createdAt: at, expiresAt: at + ttl })
  return { token, email }
}

/** Deletes every token of these purposes: their links stop working. Call inside a transaction. */
export async function voidAccountTokens (tx: Database, userId: number, purposes: TokenPurpose[]): Promise<void> {
  const { accountTokens } = tx.t
  await tx.q.delete(accountTokens).where(and(eq(accountTokens.userId, userId), inArray(accountTokens.purpose, purposes)))
}

/**
 * Spends a token: one delete, so of two concurrent uses exactly one gets the token's user and
 * address, and nothing of a used link is kept; an unknown, used, voided or expired token gives
 * undefined. Call inside a transaction.
 */
export async function consumeAccountToken (tx: Database, token: string, purposes: TokenPurpose[]): Promise<{ userId: number, email: string, purpose: TokenPurpose } | undefined> {
  const { accountTokens } = tx.t
  const at = unixNow()
  // Deleted whether or not it has expired: nothing of a link presented once is kept.
  const [row] = await tx.q.delete(accountTokens)
    .where(and(eq(accountTokens.tokenHash, tokenHash(token)), inArray(accountTokens.purpose, purposes)))
    .returning({ userId: accountTokens.userId, email: accountTokens.email, purpose: accountTokens.purpose, expiresAt: accountTokens.expiresAt })
  if (row === undefined || row.expiresAt <= at) return undefined
  return { userId: row.userId, email: row.email, purpose: row.purpose }
}
