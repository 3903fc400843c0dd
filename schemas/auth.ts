import { Type } from '@sinclair/typebox'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../src/domain/passwords.js'

const Jwt = Type.String({ minLength: 1, maxLength: 4096 })

/**
 * OAuth2 (RFC 6749 §3.1): parameters the server does not know are ignored, so this body alone is
 * not strict. Which fields a grant needs is checked in the handler, with a clear message.
 */
export const TokenRequest = Type.Object({
  grant_type: Type.Optional(Type.String({ maxLength: 64, default: 'password', description: '`password` (the default) or `refresh_token`' })),
  username: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'Email or username (grant_type=password)' })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, description: 'grant_type=password' })),
  refresh_token: Type.Optional({ ...Jwt, description: 'grant_type=refresh_token' })
}, { description: 'Other parameters (`scope`, `client_id`, `client_secret`, ...) are accepted and ignored' })

export const TokenPair = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds the access token lives' })
}, { $id: 'TokenPair', title: 'TokenPair' })

export const LogoutBody = Type.Object({
  refresh_token: Jwt
}, { additionalProperties: false })

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
