import { Type } from '@sinclair/typebox'
import { PASSWORD_MAX_LENGTH } from '../src/policy.js'
import { ErrorResponse, Id, NullableString, pageOf, Timestamp } from './common.js'

const CurrentPassword = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, description: 'The account\'s password, asked again' })

/** A TOTP code (6 digits) or a recovery code (`k7m2-q9xp-4tfa`, case and dashes ignored). */
export const Otp = Type.String({
  minLength: 6, maxLength: 32, description: 'A 6-digit code from the authenticator app, or one of the recovery codes'
})
const OtpWhenOn = Type.Optional({ ...Otp, description: 'Required when an authenticator app is on: a 6-digit code, or a recovery code' })

export const MfaSummary = Type.Object({
  totp: Type.Boolean({ description: 'Whether an authenticator app (TOTP) is on' }),
  passkeys: Type.Integer({ minimum: 0, description: 'Passkeys registered' }),
  recovery_codes_left: Type.Integer({ minimum: 0, description: 'Unused recovery codes' })
}, { $id: 'MfaSummary', title: 'MfaSummary', description: 'The second factors of the account', examples: [{ totp: true, passkeys: 1, recovery_codes_left: 9 }] })

export const ReauthBody = Type.Object({
  password: CurrentPassword,
  otp: OtpWhenOn
}, {
  additionalProperties: false,
  $id: 'ReauthBody',
  title: 'ReauthBody',
  description: 'The password asked again, with a code when an authenticator app is on',
  examples: [{ password: 'correct horse battery staple', otp: '123456' }]
})

export const ReauthWithCodeBody = Type.Object({
  password: CurrentPassword,
  otp: Otp
}, {
  additionalProperties: false,
  $id: 'ReauthWithCodeBody',
  title: 'ReauthWithCodeBody',
  description: 'The password asked again, and a code of the authenticator app (or a recovery code)',
  examples: [{ password: 'correct horse battery staple', otp: '123456' }]
})

export const TotpStartBody = Type.Object({ password: CurrentPassword }, {
  additionalProperties: false, $id: 'TotpStartBody', title: 'TotpStartBody', examples: [{ password: 'correct horse battery staple' }]
})

export const TotpEnrolment = Type.Object({
  secret: Type.String({ description: 'Base32, 160 bits: type it into the app, or use `otpauth_url`' }),
  otpauth_url: Type.String({ description: 'For a QR code: `otpauth://totp/Inkwell:<email>?secret=…&issuer=Inkwell`' })
}, {
  $id: 'TotpEnrolment',
  title: 'TotpEnrolment',
  description: 'A new authenticator-app secret, not on until confirmed with a code',
  examples: [{ secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', otpauth_url: 'otpauth://totp/Inkwell:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Inkwell' }]
})

export const TotpConfirmBody = Type.Object({
  code: Type.String({ minLength: 6, maxLength: 6, pattern: '^[0-9]{6}$', description: 'The app\'s current 6-digit code', examples: ['123456'] })
}, { additionalProperties: false, $id: 'TotpConfirmBody', title: 'TotpConfirmBody', examples: [{ code: '123456' }] })

export const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String(), { minItems: 10, maxItems: 10, description: 'Shown once: each works once in place of a code' })
}, {
  $id: 'RecoveryCodes',
  title: 'RecoveryCodes',
  examples: [{ recovery_codes: ['k7m2-q9xp-4tfa', 'x3vd-8kq1-mzr7', 'p2wn-h6tc-0bye', 'q8rk-3fj5-a1mz', 'n4x7-c9pv-t2gd', 'e6hm-w1qs-7kzr', 'b5ty-2ndx-v8cj', 'g9pf-4mrh-s3wk', 'r1ce-7xzv-h5qn', 'y2tb-6kqg-d9mp'] }]
})

export const Passkey = Type.Object({
  id: Id,
  name: Type.String(),
  created_at: Timestamp,
  last_used_at: NullableString({ description: 'The last login with it (ISO-8601, UTC), or null' })
}, { $id: 'Passkey', title: 'Passkey', examples: [{ id: 3, name: 'Laptop', created_at: '2026-12-07T12:00:00.000Z', last_used_at: null }] })

export const PasskeyPage = pageOf(Passkey, 'PasskeyPage')

export const PasskeyParams = Type.Object({ id: Id })

/** The browser's JSON of a WebAuthn ceremony, checked by the WebAuthn library (its fields are WebAuthn's, not ours). */
const WebAuthnJson = (what: string) => Type.Object({
  id: Type.String({ minLength: 1, maxLength: 1024 }),
  rawId: Type.String({ minLength: 1, maxLength: 1024 }),
  type: Type.Literal('public-key'),
  response: Type.Object({}, { additionalProperties: true, description: `The authenticator's ${what}, base64url fields as the browser's toJSON() gives them` }),
  clientExtensionResults: Type.Object({}, { additionalProperties: true }),
  authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 }))
}, { additionalProperties: false })

export const PasskeyRegistration = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, description: 'A name the user recognises, e.g. "Laptop"' }),
  response: { ...WebAuthnJson('attestation'), description: '`RegistrationResponseJSON`: what `navigator.credentials.create()` gave, as JSON' }
}, {
  additionalProperties: false,
  $id: 'PasskeyRegistration',
  title: 'PasskeyRegistration',
  examples: [{
    name: 'Laptop',
    response: {
      id: 'Zm9vYmFy…', rawId: 'Zm9vYmFy…', type: 'public-key', authenticatorAttachment: 'platform', clientExtensionResults: {},
      response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIi…', attestationObject: 'o2NmbXRkbm9uZW…', transports: ['internal'] }
    }
  }]
})

export const PasskeyLogin = Type.Object({
  response: { ...WebAuthnJson('assertion'), description: '`AuthenticationResponseJSON`: what `navigator.credentials.get()` gave, as JSON' }
}, {
  additionalProperties: false,
  $id: 'PasskeyLogin',
  title: 'PasskeyLogin',
  examples: [{
    response: {
      id: 'Zm9vYmFy…', rawId: 'Zm9vYmFy…', type: 'public-key', authenticatorAttachment: 'platform', clientExtensionResults: {},
      response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uZ2V0Ii…', authenticatorData: 'SZYN5YgOjGh0…', signature: 'MEUCIQD…', userHandle: 'Nw' }
    }
  }]
})

export const WebAuthnOptions = Type.Object({
  challenge: Type.String({ description: 'base64url; single use, valid 5 minutes' }),
  rpId: Type.Optional(Type.String()),
  timeout: Type.Optional(Type.Integer())
}, {
  additionalProperties: true,
  $id: 'WebAuthnOptions',
  title: 'WebAuthnOptions',
  description: 'WebAuthn options in their JSON form (`PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`): ' +
    'pass them to `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` (or @simplewebauthn/browser)',
  examples: [{ challenge: 'x7Q2m0bq…', rpId: 'app.example.com', timeout: 300000, userVerification: 'required', allowCredentials: [] }]
})

export const MfaRequired = Type.Object({
  ...ErrorResponse.properties,
  mfa_token: Type.String({ description: 'Opaque, single use, valid 5 minutes: send it with `grant_type=mfa_otp` and a code' })
}, {
  $id: 'MfaRequired',
  title: 'MfaRequired',
  description: 'The password was right and a second factor is on: the login continues with `grant_type=mfa_otp`',
  examples: [{ statusCode: 403, error: 'Forbidden', message: 'A second factor is required: send grant_type=mfa_otp with this mfa_token and a code', code: 'MFA_REQUIRED', mfa_token: 'p1Zb…' }]
})
