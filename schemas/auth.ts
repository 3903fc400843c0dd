import { Type } from '@sinclair/typebox'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../src/policy.js'

const Jwt = Type.String({ minLength: 1, maxLength: 4096 })

/**
 * OAuth2 (RFC 6749 §3.1): parameters the server does not know are ignored, so this body alone is
 * not strict. Which fields a grant needs is checked in the handler, with a clear message.
 */
export const TokenRequest = Type.Object({
  // No JSON Schema `default`: generators would make the field required in the request type (the handler defaults it).
  grant_type: Type.Optional(Type.String({ maxLength: 64, description: '`password` (when left out), `refresh_token`, or `mfa_otp` (the second step of a login with a second factor)' })),
  username: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'Email or username (grant_type=password)' })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, description: 'grant_type=password' })),
  refresh_token: Type.Optional({ ...Jwt, description: 'grant_type=refresh_token' }),
  mfa_token: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'grant_type=mfa_otp: the `mfa_token` of the 403 `MFA_REQUIRED` answer' })),
  otp: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'grant_type=mfa_otp: a 6-digit code of the authenticator app, or a recovery code' }))
}, {
  $id: 'TokenRequest',
  title: 'TokenRequest',
  description: 'The same fields as a form (as OAuth2 clients send them) or as JSON. ' +
    'Other parameters (`scope`, `client_id`, `client_secret`, ...) are accepted and ignored',
  examples: [
    { grant_type: 'password', username: 'ada', password: 'correct horse battery staple' },
    { grant_type: 'refresh_token', refresh_token: 'eyJhbGciOiJIUzI1NiJ9.…' },
    { grant_type: 'mfa_otp', mfa_token: 'p1Zb…', otp: '123456' }
  ]
})

export const TokenPair = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds the access token lives' })
}, {
  $id: 'TokenPair',
  title: 'TokenPair',
  examples: [{ access_token: 'eyJhbGciOiJIUzI1NiJ9.…', refresh_token: 'eyJhbGciOiJIUzI1NiJ9.…', token_type: 'bearer', expires_in: 900 }]
})

export const LogoutBody = Type.Object({
  refresh_token: Jwt
}, { additionalProperties: false, $id: 'LogoutBody', title: 'LogoutBody' })

const LinkToken = Type.String({ minLength: 1, maxLength: 256, description: 'The `token` of the mailed link' })

export const PasswordResetRequest = Type.Object({
  email: Type.String({ format: 'email', maxLength: 254 })
}, { additionalProperties: false, $id: 'PasswordResetRequest', title: 'PasswordResetRequest' })

export const PasswordResetConfirm = Type.Object({
  token: LinkToken,
  new_password: Type.String({
    minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH, description: 'The new password (the registration rules apply)'
  })
}, { additionalProperties: false, $id: 'PasswordResetConfirm', title: 'PasswordResetConfirm' })

export const VerifyEmailBody = Type.Object({
  token: LinkToken
}, { additionalProperties: false, $id: 'VerifyEmailBody', title: 'VerifyEmailBody' })
