/**
 * The domain's refusals, without HTTP: each has a kind (what went wrong, in the domain's words), a
 * machine-readable code and a message for people. plugins/errors.ts maps kinds to HTTP statuses once.
 * New domain code throws these; older modules still throw HTTP errors and move here over time.
 */
export type DomainErrorKind =
  | 'invalid' // the input breaks a rule (400)
  | 'unauthenticated' // credentials or a login step failed (401)
  | 'forbidden' // known caller, not allowed (403)
  | 'not_found' // 404
  | 'conflict' // the state forbids it (409)
  | 'throttled' // too many attempts; `retryAfter` seconds (429)

export interface DomainErrorOptions {
  /** Seconds until another attempt is allowed (kind 'throttled'). */
  retryAfter?: number
  /** Fields the client needs beside the message, e.g. the `mfa_token` of a login awaiting its second factor. */
  extra?: Record<string, string>
}

export class DomainError extends Error {
  readonly retryAfter?: number
  readonly extra?: Record<string, string>

  constructor (readonly kind: DomainErrorKind, readonly code: string, message: string, options: DomainErrorOptions = {}) {
    super(message)
    this.name = 'DomainError'
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter
    if (options.extra !== undefined) this.extra = options.extra
  }
}

/** The catalogue: every refusal of the login and second-factor flows, built in one place each. */
export const errors = {
  /** A wrong password or unknown account at login: one body for both, so neither is told apart. */
  invalidLogin: () => new DomainError('unauthenticated', 'INVALID_LOGIN', 'Incorrect username or password'),
  /** Too many wrong passwords or codes for this account from this client. */
  loginThrottled: (retryAfter: number) => new DomainError('throttled', 'LOGIN_THROTTLED', 'Too many failed logins; try again later', { retryAfter }),
  /** The password was right and a second factor is on: the login goes on with `grant_type=mfa_otp`. */
  mfaRequired: (mfaToken: string) => new DomainError('forbidden', 'MFA_REQUIRED', 'A second factor is required: send grant_type=mfa_otp with this mfa_token and a code', { extra: { mfa_token: mfaToken } }),
  invalidMfaToken: () => new DomainError('unauthenticated', 'INVALID_MFA_TOKEN', 'Invalid or expired mfa_token; log in again'),
  invalidCode: () => new DomainError('unauthenticated', 'INVALID_CODE', 'Invalid code'),
  /** Re-authentication: the password asked again is wrong. */
  wrongPassword: (message = 'Password is incorrect') => new DomainError('invalid', 'WRONG_PASSWORD', message),
  /** Re-authentication with a second factor on: the code is missing or wrong. */
  wrongCode: (missing: boolean) => new DomainError('invalid', missing ? 'OTP_REQUIRED' : 'WRONG_CODE',
    missing ? 'A code from your authenticator app (or a recovery code) is required' : 'The code is incorrect'),
  totpAlreadyOn: () => new DomainError('conflict', 'TOTP_ALREADY_ENABLED', 'An authenticator app is already on; turn it off first'),
  totpNotStarted: () => new DomainError('conflict', 'TOTP_NOT_STARTED', 'No authenticator app is being set up: call POST /users/me/mfa/totp first'),
  totpOff: () => new DomainError('conflict', 'TOTP_NOT_ENABLED', 'No authenticator app is on'),
  passkeyNotFound: () => new DomainError('not_found', 'PASSKEY_NOT_FOUND', 'Passkey not found'),
  passkeyRejected: (why: string) => new DomainError('invalid', 'PASSKEY_REJECTED', `The passkey could not be registered: ${why}`),
  secondFactorRequired: () => new DomainError('forbidden', 'MFA_REQUIRED', 'Second factor required')
} as const

export const isDomainError = (err: unknown): err is DomainError => err instanceof DomainError
