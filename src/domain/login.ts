import type { Database, UserRow } from '../db/index.js'
import { recordAudit } from './audit.js'
import { errors } from './errors.js'
import type { LoginThrottle } from './login-throttle.js'
import { createMfaChallenge, reserveMfaAttempt, spendMfaChallenge } from './mfa/challenges.js'
import { spendRecoveryCode } from './mfa/recovery-codes.js'
import type { MfaKeys } from './mfa/secrets.js'
import { totpEnabled, verifyTotp } from './mfa/totp.js'
import { checkPassword, verifyDummyPassword } from './passwords.js'
import type { ClientInfo } from './sessions.js'
import { findUserById, findUserByLogin, upgradePasswordHash } from './users.js'

/** How a session was opened, as RFC 8176 names it: password, one-time code, recovery code, hardware key. */
export type AuthMethod = 'pwd' | 'otp' | 'rc' | 'hwk'

/** The second factors: a session opened with one of these passed more than a password. */
export const SECOND_FACTORS: readonly AuthMethod[] = ['otp', 'rc', 'hwk']

export interface NewSession {
  userId: number
  /** The password hash that was verified (the session starts only while it is still the account's), or null for a passkey. */
  verifiedHash: string | null
  amr: AuthMethod[]
  client: Caller
}

/** What happened at a login, for the metrics and the log; nothing here changes an answer. */
export type LoginOutcome = 'success' | 'bad_credentials' | 'throttled' | 'password_changed' | 'mfa_required' | 'bad_code'

export interface LoginPorts<Tokens> {
  db: Database
  throttle: LoginThrottle
  keys: MfaKeys
  /** Starts a session and returns its tokens; undefined when the verified password is no longer the account's. */
  startSession: (session: NewSession, tx?: Database) => Promise<Tokens | undefined>
  /** A recovery code was used: the owner is told by mail. */
  recoveryCodeUsed: (user: UserRow) => void
  /** Runs after the answer (a rehash of a legacy password hash). */
  later: (task: () => Promise<void>) => void
  /** `flow` tells a login (a session is at stake) from a re-authentication (a password asked again). */
  outcome: (outcome: LoginOutcome, flow: 'login' | 'reauth', caller: Caller, userId?: number) => void
}

export interface Credentials { password: string, otp?: string | undefined }

/** Who is asking, and the log their request writes to (so every line carries its request id). */
export interface Caller extends ClientInfo {
  log?: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void }
}

/**
 * The login and re-authentication flows, written once for every route that checks a password or a
 * code: the token endpoint's password and `mfa_otp` grants, and every route that asks for the password
 * again (password change, e-mail change, account deletion, second-factor changes).
 *
 * Each attempt is counted before it is verified (LoginThrottle.reserve, atomic), so however many are
 * sent at once, at most LOGIN_FAILURE_LIMIT of them are checked; only a completed login or
 * re-authentication sets the count back. The count is the account's (`user:<id>`), whichever
 * identifier was typed; an unknown identifier is counted under itself, exactly as often.
 */
export function loginService<Tokens> (ports: LoginPorts<Tokens>) {
  const { db, throttle, keys } = ports

  const accountKey = (userId: number) => `user:${userId}`
  // Stryker disable next-line StringLiteral: request.ip is always set over HTTP; '' only names a client without an address
  const clientKey = (client: Caller) => client.ip ?? ''

  async function reserve (key: string, client: Caller, flow: 'login' | 'reauth', userId?: number): Promise<void> {
    const wait = await throttle.reserve(key, clientKey(client))
    if (wait > 0) {
      ports.outcome('throttled', flow, client, userId)
      throw errors.loginThrottled(wait)
    }
  }

  /** A TOTP code or a recovery code of the user; which one it was, or undefined when neither matches. */
  async function secondFactor (user: UserRow, code: string, client: Caller): Promise<'otp' | 'rc' | undefined> {
    const trimmed = code.trim()
    if (/^\d{6}$/.test(trimmed)) return await verifyTotp(db, keys, user.id, trimmed) ? 'otp' : undefined
    const used = await db.transaction(async (tx) => {
      if (!await spendRecoveryCode(tx, keys, user.id, trimmed)) return false
      await recordAudit(tx, { actorId: user.id, ip: client.ip }, { action: 'mfa_recovery_code_used', targetType: 'user', targetId: user.id, details: {} })
      return true
    })
    if (!used) return undefined
    ports.recoveryCodeUsed(user)
    return 'rc'
  }

  async function open (session: NewSession): Promise<Tokens> {
    const tokens = await ports.startSession(session)
    if (tokens === undefined) {
      // The password changed, or the account went, while this login was verifying it.
      ports.outcome('password_changed', 'login', session.client, session.userId)
      throw errors.invalidLogin()
    }
    ports.outcome('success', 'login', session.client, session.userId)
    return tokens
  }

  return {
    /**
     * The password grant. With a second factor on, a right password does not log in: it throws
     * `MFA_REQUIRED` with an `mfa_token` for `withCode`, and the attempt stays counted (a known password
     * must not buy endless guesses at the code).
     */
    async withPassword (identifier: string, password: string, client: Caller): Promise<Tokens> {
      const user = await findUserByLogin(db, identifier)
      // Stryker disable next-line MethodExpression: any case-folding counts an unknown identifier once, whatever its case
      await reserve(user === undefined ? `name:${identifier.toLowerCase()}` : accountKey(user.id), client, 'login', user?.id)
      // An unknown account still pays for one argon2 verification: its timing matches a wrong password.
      const check = user === undefined
        // Stryker disable next-line BooleanLiteral: rehash is read only for a valid password, which an unknown account never has
        ? { valid: await verifyDummyPassword(password), rehash: false }
        : await checkPassword(user.passwordHash, password)
      if (user === undefined || !check.valid) {
        ports.outcome('bad_credentials', 'login', client, user?.id)
        throw errors.invalidLogin()
      }
      if (await totpEnabled(db, user.id)) {
        ports.outcome('mfa_required', 'login', client, user.id)
        throw errors.mfaRequired(await createMfaChallenge(db, user.id, user.passwordHash))
      }
      await throttle.reset(accountKey(user.id), clientKey(client))
      const tokens = await open({ userId: user.id, verifiedHash: user.passwordHash, amr: ['pwd'], client })
      // A hash made before passwords were prepared (RFC 8265) is replaced by the prepared form's, once.
      if (check.rehash) ports.later(() => upgradePasswordHash(db, user.id, user.passwordHash, password))
      return tokens
    },

    /** The `mfa_otp` grant: the `mfa_token` of the first step and a TOTP or recovery code. */
    async withCode (mfaToken: string, code: string, client: Caller): Promise<Tokens> {
      // Counted against the token (5 codes) and the account (LOGIN_FAILURE_LIMIT) before the code is checked.
      const challenge = await reserveMfaAttempt(db, mfaToken)
      if (challenge === undefined) throw errors.invalidMfaToken()
      await reserve(accountKey(challenge.userId), client, 'login', challenge.userId)
      const user = await findUserById(db, challenge.userId)
      // Bound to the password it was issued for: a change or reset since voids it.
      if (user === undefined || user.passwordHash !== challenge.passwordHash) throw errors.invalidMfaToken()
      const method = await secondFactor(user, code, client)
      if (method === undefined) {
        ports.outcome('bad_code', 'login', client, user.id)
        throw errors.invalidCode()
      }
      const tokens = await db.transaction(async (tx) => {
        if (!await spendMfaChallenge(tx, challenge.id)) return undefined
        return { tokens: await ports.startSession({ userId: user.id, verifiedHash: challenge.passwordHash, amr: ['pwd', method], client }, tx) }
      })
      if (tokens === undefined) throw errors.invalidMfaToken()
      if (tokens.tokens === undefined) {
        ports.outcome('password_changed', 'login', client, user.id)
        throw errors.invalidLogin()
      }
      await throttle.reset(accountKey(user.id), clientKey(client))
      ports.outcome('success', 'login', client, user.id)
      return tokens.tokens
    },

    /** A passkey login (the ceremony is verified by the caller): both factors in one. */
    async withPasskey (userId: number, client: Caller): Promise<Tokens> {
      return await open({ userId, verifiedHash: null, amr: ['hwk'], client })
    },

    /**
     * Asks the caller for their password again (and a code when TOTP is on), counted like a login.
     * Returns the account's stored row; throws 400 `WRONG_PASSWORD` / `OTP_REQUIRED` / `WRONG_CODE`, or
     * the login's 429.
     */
    async reauthenticate (userId: number, credentials: Credentials, client: Caller, wrongPasswordMessage?: string): Promise<UserRow> {
      return await this.attempt(userId, client, async () => {
        const user = await findUserById(db, userId)
        if (user === undefined || !(await checkPassword(user.passwordHash, credentials.password)).valid) {
          throw errors.wrongPassword(wrongPasswordMessage)
        }
        if (await totpEnabled(db, user.id)) {
          if (credentials.otp === undefined) throw errors.wrongCode(true)
          if (await secondFactor(user, credentials.otp, client) === undefined) throw errors.wrongCode(false)
        }
        return user
      })
    },

    /**
     * Runs one check of a secret (a password, a code) for the account within its limit: counted
     * before `check` runs, and the count set back only when `check` resolves. A refusal it throws stays counted.
     */
    async attempt<T> (userId: number, client: Caller, check: () => Promise<T>): Promise<T> {
      await reserve(accountKey(userId), client, 'reauth', userId)
      const result = await check()
      await throttle.reset(accountKey(userId), clientKey(client))
      return result
    }
  }
}

export type LoginService<Tokens> = ReturnType<typeof loginService<Tokens>>
