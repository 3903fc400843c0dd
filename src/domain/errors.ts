/**
 * The domain's refusals, without HTTP: each has a kind (what went wrong, in the domain's words), a
 * machine-readable code and a message for people. plugins/errors.ts maps kinds to HTTP statuses once.
 * src/domain imports nothing from Fastify: every refusal it makes is built here, once.
 */
export type DomainErrorKind =
  | 'invalid' // the input breaks a rule (400)
  | 'unauthenticated' // credentials or a login step failed (401)
  | 'forbidden' // known caller, not allowed (403)
  | 'not_found' // 404
  | 'conflict' // the state forbids it (409)
  | 'throttled' // too many attempts; `retryAfter` seconds (429)
  | 'too_large' // the input is bigger than allowed (413)
  | 'unsupported' // the input is of a kind the domain cannot read (415)

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

/** The catalogue: every refusal of the domain, built in one place each. */
export const errors = {
  /** The one 401 of the API: every way a token (or its session, or its user) can fail ends here, with the same bytes. */
  invalidCredentials: () => new DomainError('unauthenticated', 'INVALID_CREDENTIALS', 'Could not validate credentials'),
  userNotFound: () => new DomainError('not_found', 'USER_NOT_FOUND', 'User not found'),
  postNotFound: () => new DomainError('not_found', 'POST_NOT_FOUND', 'Post not found'),
  sessionNotFound: () => new DomainError('not_found', 'SESSION_NOT_FOUND', 'Session not found'),
  commentNotFound: () => new DomainError('not_found', 'COMMENT_NOT_FOUND', 'Comment not found'),
  /** Ownership: the caller neither wrote the post nor holds the role's `_any` permission. */
  notOwner: () => new DomainError('forbidden', 'NOT_OWNER', 'Not your post'),
  /** Ownership of a comment: the caller neither wrote it nor holds `comment:delete_any`. */
  notCommentOwner: () => new DomainError('forbidden', 'NOT_OWNER', 'Not your comment'),
  /** A tag that normalises to nothing, to more than 32 characters, or holds a comma or a control character. */
  invalidTag: (raw: string) => new DomainError('invalid', 'INVALID_TAG', `Invalid tag ${JSON.stringify(raw.slice(0, 40))}: 1 to 32 characters once trimmed, without commas or control characters`),
  tooManyTags: () => new DomainError('invalid', 'TOO_MANY_TAGS', 'At most 10 different tags'),
  /** The Conduit API (/api) cannot ask for the current password, which a new password needs. */
  passwordChangeElsewhere: () => new DomainError('invalid', 'PASSWORD_CHANGE_ELSEWHERE', 'The password cannot be changed here: use POST /users/me/password, which asks for the current one'),
  /** Conduit's `image`: pictures are uploaded through PUT /users/me/avatar; only the current value or none may be sent. */
  imageUploadElsewhere: () => new DomainError('invalid', 'IMAGE_UPLOAD_ELSEWHERE', 'image can only be kept, or removed with "" or null: upload a picture through PUT /users/me/avatar'),
  cannotFollowSelf: () => new DomainError('invalid', 'CANNOT_FOLLOW_SELF', 'You cannot follow yourself'),
  emailTaken: () => new DomainError('conflict', 'EMAIL_TAKEN', 'Email already registered'),
  usernameTaken: () => new DomainError('conflict', 'USERNAME_TAKEN', 'Username already taken'),
  /** Deleting, demoting or deactivating the last active admin would leave nobody to administer. */
  lastAdmin: (message: string) => new DomainError('conflict', 'LAST_ADMIN', message),
  /** A new password breaks the policy (src/domain/passwords.ts says why in words). */
  passwordRejected: (why: string) => new DomainError('invalid', 'PASSWORD_REJECTED', why),
  /** A mailed link's token that is unknown, used, voided or expired. */
  invalidLinkToken: () => new DomainError('invalid', 'INVALID_TOKEN', 'Invalid or expired token'),
  emailAlreadyVerified: () => new DomainError('conflict', 'EMAIL_ALREADY_VERIFIED', 'Email already verified'),
  invalidCursor: () => new DomainError('invalid', 'INVALID_CURSOR', 'querystring/cursor is not a cursor this list issued'),
  cursorWithSkip: () => new DomainError('invalid', 'CURSOR_WITH_SKIP', 'querystring/cursor cannot be combined with querystring/skip above 0'),
  imageTypeUnsupported: () => new DomainError('unsupported', 'UNSUPPORTED_IMAGE_TYPE', 'The file is not a JPEG, PNG, WebP or GIF image'),
  imageUnreadable: () => new DomainError('unsupported', 'INVALID_IMAGE', 'The image is damaged or truncated and cannot be read'),
  imageTooManyPixels: (megapixels: number) => new DomainError('too_large', 'IMAGE_TOO_MANY_PIXELS', `The image is too large: at most ${megapixels} megapixels (width × height)`),

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
