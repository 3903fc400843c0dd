import { randomInt } from 'node:crypto'
import { and, eq, sql } from 'drizzle-orm'
import type { Database } from '../../db/index.js'
import type { MfaKeys } from './secrets.js'

export const RECOVERY_CODE_COUNT = 10

// Crockford's base32 alphabet: no i, l, o or u, so a code read aloud or off paper is typed right.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const GROUPS = 3
const GROUP_LENGTH = 4 // 12 characters of 5 bits: 60 random bits a code

/** `k7m2-q9xp-4tfa`: written for people, 60 random bits. */
export function newRecoveryCode (): string {
  return Array.from({ length: GROUPS }, () =>
    Array.from({ length: GROUP_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('')).join('-')
}

/** Case, dashes and spaces ignored; the letters people confuse with digits read as those digits. */
export function normalizeRecoveryCode (code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '').replace(/[oil]/g, (c) => (c === 'o' ? '0' : '1'))
}

/** Replaces the user's recovery codes with 10 new ones, returned once in clear. Call inside a transaction. */
export async function replaceRecoveryCodes (tx: Database, keys: MfaKeys, userId: number): Promise<string[]> {
  const { recoveryCodes, users } = tx.t
  await tx.q.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
  await tx.q.insert(recoveryCodes).values(codes.map((code) => ({ userId, codeHash: keys.codeHash(userId, normalizeRecoveryCode(code)) })))
  await tx.q.update(users).set({ mfaRecoveryCodes: RECOVERY_CODE_COUNT }).where(eq(users.id, userId))
  return codes
}

/** Spends a recovery code: one delete, so of two uses of the same code exactly one succeeds. */
export async function spendRecoveryCode (tx: Database, keys: MfaKeys, userId: number, code: string): Promise<boolean> {
  const { recoveryCodes, users } = tx.t
  const normalized = normalizeRecoveryCode(code)
  // Stryker disable next-line ConditionalExpression,Regex: a code of another shape matches no stored hash anyway; this only spares the query
  if (!/^[0-9a-z]{12}$/.test(normalized)) return false
  const spent = await tx.q.delete(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, keys.codeHash(userId, normalized))))
    .returning({ id: recoveryCodes.id })
  if (spent.length === 0) return false
  await tx.q.update(users).set({ mfaRecoveryCodes: sql`${users.mfaRecoveryCodes} - 1` }).where(eq(users.id, userId))
  return true
}
