import { availableParallelism } from 'node:os'
import { hash, verify, type Options } from '@node-rs/argon2'
import { dictionary } from '@zxcvbn-ts/language-common'
import { PASSWORD_MIN_LENGTH } from '../policy.js'
import { concurrencyLimit } from './limit.js'


// OWASP's argon2id parameters, spelled out because the library's defaults have changed between versions.
export const ARGON2_OPTIONS = {
  algorithm: 2, // Algorithm.Argon2id: a const enum, erased at runtime, so the value is written out
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1
} satisfies Options

/**
 * argon2 runs on libuv's thread pool, never on the event loop; but four pool threads on a two-core
 * machine would still starve it. At most (cores - 1) hashes run at once, the rest queue, so other
 * requests keep a core during a login storm (bench/: p99 of /users/me under a storm).
 */
// Stryker disable next-line MethodExpression,ArithmeticOperator: how many hashes run at once changes latency under load, not any answer
const limited = concurrencyLimit(Math.max(1, availableParallelism() - 1))

/** argon2 hashes and verifications running and waiting in this process (the metrics' gauges). */
export const passwordHashingLoad = limited.load

/**
 * RFC 8265's OpaqueString preparation: every non-ASCII space becomes U+0020, then NFC. Nothing is
 * trimmed or case-mapped (NIST 800-63B): the same password typed on another keyboard or system matches.
 */
export function preparePassword (password: string): string {
  return password.replace(/\p{Zs}/gu, ' ').normalize('NFC')
}

// What draws nothing of its own: spaces, format and ignorable characters, the fillers that render blank
// (U+2800 BRAILLE PATTERN BLANK, the Hangul fillers U+3164, U+115F, U+1160, U+FFA0) and combining
// marks, which only decorate the character before them. They may be part of a password, not most of it.
const INVISIBLE = /[\p{White_Space}\p{Cf}\p{Default_Ignorable_Code_Point}\p{M}\u2800\u3164\u115F\u1160\uFFA0]/u

/** Why a (new) password cannot be used, in words for a 400; undefined when it can. */
export function passwordProblem (password: string): string | undefined {
  const prepared = preparePassword(password)
  if (/\p{Cc}/u.test(prepared)) return 'Password must not contain control characters'
  const visible = [...prepared].filter((c) => !INVISIBLE.test(c)).length
  if (visible < PASSWORD_MIN_LENGTH) {
    return `Password must have at least ${PASSWORD_MIN_LENGTH} visible characters (spaces, invisible characters, blank fillers and combining marks do not count)`
  }
  if (isCommonPassword(prepared)) return 'This password is too common; choose another one'
  return undefined
}

/** Hashes the prepared form (OpaqueString), so every later comparison is between prepared forms. */
export function hashPassword (password: string): Promise<string> {
  return limited(() => hash(preparePassword(password), ARGON2_OPTIONS))
}

async function verifies (passwordHash: string, candidate: string): Promise<boolean> {
  try {
    return await limited(() => verify(passwordHash, candidate))
  } catch {
    return false
  }
}

export interface PasswordCheck {
  valid: boolean
  /** The hash was made from the password as typed, before preparation: hash it again. */
  rehash: boolean
}

/**
 * Checks a password against a stored hash: its prepared form, then (for hashes made before passwords
 * were prepared) the form as typed, when the two differ.
 */
export async function checkPassword (passwordHash: string, password: string): Promise<PasswordCheck> {
  const prepared = preparePassword(password)
  if (await verifies(passwordHash, prepared)) return { valid: true, rehash: false }
  // Stryker disable next-line ConditionalExpression,LogicalOperator: when the two forms are equal, the second verification repeats the first one's "no"
  if (prepared !== password && await verifies(passwordHash, password)) return { valid: true, rehash: true }
  // Stryker disable next-line BooleanLiteral: callers read rehash only for a valid password
  return { valid: false, rehash: false }
}

export async function verifyPassword (passwordHash: string, password: string): Promise<boolean> {
  return (await checkPassword(passwordHash, password)).valid
}

let dummyHash: Promise<string> | undefined

/**
 * Costs what a real verification costs, so a login for an unknown account
 * takes as long as one with a wrong password.
 */
export async function verifyDummyPassword (password: string): Promise<false> {
  // Stryker disable next-line StringLiteral: any dummy password costs the same
  dummyHash ??= hash('inkwell-dummy-password-for-timing', ARGON2_OPTIONS)
  await checkPassword(await dummyHash, password)
  return false
}

// The 49k most common passwords from a maintained list; shorter ones are refused by length anyway.
const commonPasswords = new Set(
  (dictionary['passwords-common'] as string[])
    // Stryker disable next-line ConditionalExpression: keeping the shorter entries changes nothing, the length rule refuses them first
    .filter((p) => p.length >= PASSWORD_MIN_LENGTH)
    .map((p) => p.toLowerCase())
)

/** Checked on the NFKC, case-folded, trimmed form, so `Ｐａｓｓｗｏｒｄ１` or ` password1 ` is as common as `password1`. */
export function isCommonPassword (password: string): boolean {
  return commonPasswords.has(password.normalize('NFKC').toLowerCase().trim())
}
