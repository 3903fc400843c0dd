import { availableParallelism } from 'node:os'
import { hash, verify, type Options } from '@node-rs/argon2'
import { dictionary } from '@zxcvbn-ts/language-common'
import { concurrencyLimit } from './limit.js'

export const PASSWORD_MIN_LENGTH = 8
export const PASSWORD_MAX_LENGTH = 128

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
const limited = concurrencyLimit(Math.max(1, availableParallelism() - 1))

/** The password is hashed verbatim (NIST 800-63B): no trimming, no normalization. */
export function hashPassword (password: string): Promise<string> {
  return limited(() => hash(password, ARGON2_OPTIONS))
}

export async function verifyPassword (passwordHash: string, password: string): Promise<boolean> {
  try {
    return await limited(() => verify(passwordHash, password))
  } catch {
    return false
  }
}

let dummyHash: Promise<string> | undefined

/**
 * Costs what a real verification costs, so a login for an unknown account
 * takes as long as one with a wrong password.
 */
export async function verifyDummyPassword (password: string): Promise<false> {
  dummyHash ??= hash('inkwell-dummy-password-for-timing', ARGON2_OPTIONS)
  await verifyPassword(await dummyHash, password)
  return false
}

// The 49k most common passwords from a maintained list; shorter ones are refused by length anyway.
const commonPasswords = new Set(
  (dictionary['passwords-common'] as string[])
    .filter((p) => p.length >= PASSWORD_MIN_LENGTH)
    .map((p) => p.toLowerCase())
)

export function isCommonPassword (password: string): boolean {
  return commonPasswords.has(password.toLowerCase())
}
