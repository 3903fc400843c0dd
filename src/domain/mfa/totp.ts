import { and, eq, isNotNull, isNull, lt } from 'drizzle-orm'
import { generateSecret, generateURI, verify } from 'otplib'
import type { Database } from '../../db/index.js'
import { recordAudit, type AuditContext } from '../audit.js'
import { errors } from '../errors.js'
import { unixNow } from '../ids.js'
import { replaceRecoveryCodes } from './recovery-codes.js'
import type { MfaKeys } from './secrets.js'

export const TOTP_ISSUER = 'Inkwell'
/** RFC 6238 as authenticator apps use it: HMAC-SHA1, 6 digits, 30 s steps; one step either side accepted. */
const PERIOD = 30
const SECRET_BYTES = 20 // 160 bits, RFC 4226's recommendation

export interface TotpEnrolment { secret: string, otpauth_url: string }

/**
 * Starts setting up an authenticator app: a new secret, replacing one not yet confirmed. Nothing is on
 * until `confirmTotp`. Refused while one is on.
 */
export async function startTotp (db: Database, keys: MfaKeys, user: { id: number, email: string }): Promise<TotpEnrolment> {
  const { totpFactors } = db.t
  // Stryker disable next-line ObjectLiteral: otplib's default is 20 bytes too; spelled out so that a new default cannot shorten it
  const secret = generateSecret({ length: SECRET_BYTES })
  await db.transaction(async (tx) => {
    const [current] = await tx.q.select({ enabledAt: totpFactors.enabledAt }).from(totpFactors).where(eq(totpFactors.userId, user.id))
    if (current !== undefined && current.enabledAt !== null) throw errors.totpAlreadyOn()
    await tx.q.delete(totpFactors).where(eq(totpFactors.userId, user.id))
    await tx.q.insert(totpFactors).values({ userId: user.id, secret: keys.seal(secret, user.id), createdAt: unixNow() })
  })
  return { secret, otpauth_url: generateURI({ issuer: TOTP_ISSUER, label: user.email, secret }) }
}

/** The time step a code belongs to, if it is the code of a step after `afterStep` within the window. */
async function matchingStep (secret: string, code: string, afterStep: number): Promise<number | undefined> {
  // Stryker disable next-line ConditionalExpression,Regex: otplib refuses other shapes as well; this spares the HMACs
  if (!/^\d{6}$/.test(code)) return undefined
  try {
    const result = await verify({ secret, token: code, period: PERIOD, epochTolerance: PERIOD, afterTimeStep: afterStep })
    return result.valid && 'timeStep' in result ? result.timeStep : undefined
  // Stryker disable next-line BlockStatement: without it the function ends here all the same, returning undefined
  } catch {
    return undefined
  }
}

/**
 * Turns TOTP on with a first code from the app; returns the 10 recovery codes, shown once.
 * A wrong code → 400. Audited as `mfa_totp_enabled`.
 */
export async function confirmTotp (db: Database, keys: MfaKeys, userId: number, code: string, context: AuditContext): Promise<string[]> {
  const { totpFactors } = db.t
  const [row] = await db.q.select().from(totpFactors).where(eq(totpFactors.userId, userId))
  if (row === undefined) throw errors.totpNotStarted()
  if (row.enabledAt !== null) throw errors.totpAlreadyOn()
  const secret = keys.open(row.secret, userId)
  const step = secret === undefined ? undefined : await matchingStep(secret, code, 0)
  if (step === undefined) throw errors.wrongCode(false)
  return await db.transaction(async (tx) => {
    // Only the pending secret that was checked: a concurrent restart or confirmation wins instead.
    const on = await tx.q.update(totpFactors).set({ enabledAt: unixNow(), lastStep: step })
      .where(and(eq(totpFactors.userId, userId), eq(totpFactors.secret, row.secret), isNull(totpFactors.enabledAt)))
      .returning({ userId: totpFactors.userId })
    // Stryker disable next-line ConditionalExpression: reached only when a restart or another confirmation commits between the read above and this update
    if (on.length === 0) throw errors.totpNotStarted()
    await tx.q.update(tx.t.users).set({ mfaTotp: true }).where(eq(tx.t.users.id, userId))
    await recordAudit(tx, context, { action: 'mfa_totp_enabled', targetType: 'user', targetId: userId, details: {} })
    return await replaceRecoveryCodes(tx, keys, userId)
  })
}

export async function totpEnabled (db: Database, userId: number): Promise<boolean> {
  const { totpFactors } = db.t
  const rows = await db.q.select({ userId: totpFactors.userId }).from(totpFactors)
    .where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.enabledAt)))
  return rows.length > 0
}

/**
 * Checks a code of the user's app. A code is accepted once: the step it belongs to becomes the newest
 * accepted, in one conditional update, so a replay (or a parallel second use) of it, or of any older
 * code, is refused.
 */
export async function verifyTotp (db: Database, keys: MfaKeys, userId: number, code: string): Promise<boolean> {
  const { totpFactors } = db.t
  const [row] = await db.q.select().from(totpFactors).where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.enabledAt)))
  if (row === undefined) return false
  const secret = keys.open(row.secret, userId)
  if (secret === undefined) return false
  const step = await matchingStep(secret, code, row.lastStep)
  if (step === undefined) return false
  const taken = await db.transaction((tx) => tx.q.update(totpFactors).set({ lastStep: step })
    .where(and(eq(totpFactors.userId, userId), lt(totpFactors.lastStep, step))).returning({ userId: totpFactors.userId }))
  return taken.length > 0
}

/** Turns TOTP off: the secret and the recovery codes go. Audited as `mfa_totp_disabled`. */
export async function disableTotp (db: Database, userId: number, context: AuditContext): Promise<void> {
  const { totpFactors, recoveryCodes, users } = db.t
  await db.transaction(async (tx) => {
    const gone = await tx.q.delete(totpFactors).where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.enabledAt))).returning({ userId: totpFactors.userId })
    if (gone.length === 0) throw errors.totpOff()
    await tx.q.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
    await tx.q.update(users).set({ mfaTotp: false, mfaRecoveryCodes: 0 }).where(eq(users.id, userId))
    await recordAudit(tx, context, { action: 'mfa_totp_disabled', targetType: 'user', targetId: userId, details: {} })
  })
}

/** 10 new recovery codes, the old ones void. Audited as `mfa_recovery_codes_regenerated`. */
export async function regenerateRecoveryCodes (db: Database, keys: MfaKeys, userId: number, context: AuditContext): Promise<string[]> {
  return await db.transaction(async (tx) => {
    const codes = await replaceRecoveryCodes(tx, keys, userId)
    await recordAudit(tx, context, { action: 'mfa_recovery_codes_regenerated', targetType: 'user', targetId: userId, details: {} })
    return codes
  })
}
