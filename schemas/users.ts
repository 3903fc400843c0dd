import { Type } from '@sinclair/typebox'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, PERMISSIONS, ROLES } from '../src/policy.js'
import { Id, NullableString, pageOf, ref, Timestamp } from './common.js'
import { MfaSummary, Otp } from './mfa.js'

export const Username = Type.String({
  minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9_-]+$',
  description: '3 to 32 letters, digits, `_` or `-`; unique regardless of case'
})
export const Email = Type.String({ format: 'email', maxLength: 254, description: 'Stored lower-cased; unique' })
export const Bio = Type.String({ maxLength: 500 })
export const Password = Type.String({
  minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH,
  description: `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters, prepared as RFC 8265's OpaqueString (non-ASCII spaces become spaces, then NFC; nothing trimmed or case-mapped). Refused: control characters, fewer than ${PASSWORD_MIN_LENGTH} visible characters (spaces, invisible characters, blank fillers such as U+2800 and the Hangul fillers, and combining marks do not count), and the most common passwords`
})
export const Role = Type.Unsafe<typeof ROLES[number]>({ type: 'string', enum: [...ROLES], $id: 'Role', title: 'Role' })
export const Permission = Type.Unsafe<typeof PERMISSIONS[number]>({
  type: 'string', enum: [...PERMISSIONS], $id: 'Permission', title: 'Permission', description: '`resource:action`'
})
const AvatarUrl = NullableString({ description: 'Path of the profile picture on this server, or null' })

export const UserPublic = Type.Object({
  id: Id,
  username: Type.String(),
  bio: Type.String(),
  avatar_url: AvatarUrl,
  created_at: Timestamp,
  following: Type.Optional(Type.Boolean({ description: 'Whether the caller follows this user; present only when the request carries a valid token' }))
}, {
  $id: 'UserPublic',
  title: 'UserPublic',
  description: 'What anyone may see of a user',
  examples: [{ id: 7, username: 'ada', bio: 'Writes about engines', avatar_url: null, created_at: '2026-11-28T12:00:00.000Z' }]
})

export const UserPrivate = Type.Object({
  id: Id,
  email: Type.String(),
  email_verified: Type.Boolean({ description: 'Whether the owner proved the address through a mailed link' }),
  username: Type.String(),
  bio: Type.String(),
  role: ref(Role),
  is_active: Type.Boolean(),
  avatar_url: AvatarUrl,
  permissions: Type.Array(ref(Permission), { description: 'What the role grants' }),
  mfa: ref(MfaSummary),
  created_at: Timestamp
}, {
  $id: 'UserPrivate',
  title: 'UserPrivate',
  description: 'A user as they see themselves',
  examples: [{
    id: 7,
    email: 'ada@example.com',
    email_verified: true,
    username: 'ada',
    bio: 'Writes about engines',
    role: 'user',
    is_active: true,
    avatar_url: null,
    permissions: ['post:create', 'post:edit_own', 'post:delete_own', 'post:like', 'comment:create', 'comment:delete_own', 'user:follow'],
    mfa: { totp: true, passkeys: 1, recovery_codes_left: 10 },
    created_at: '2026-11-28T12:00:00.000Z'
  }]
})

export const RegisterBody = Type.Object({
  email: Email,
  username: Username,
  password: Password
}, {
  additionalProperties: false,
  $id: 'RegisterBody',
  title: 'RegisterBody',
  examples: [{ email: 'ada@example.com', username: 'ada', password: 'correct horse battery staple' }]
})

export const UpdateMeBody = Type.Object({
  username: Type.Optional(Username),
  bio: Type.Optional(Bio)
}, { additionalProperties: false, $id: 'UpdateMeBody', title: 'UpdateMeBody', description: 'Only the fields given change' })

const OtpWhenOn = Type.Optional({ ...Otp, description: 'Required when an authenticator app is on: a 6-digit code, or a recovery code' })

export const ChangePasswordBody = Type.Object({
  current_password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }),
  new_password: Password,
  otp: OtpWhenOn
}, { additionalProperties: false, $id: 'ChangePasswordBody', title: 'ChangePasswordBody' })

const CurrentPassword = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, description: 'The account\'s password, asked again' })

export const ChangeEmailBody = Type.Object({
  new_email: Email,
  current_password: CurrentPassword,
  otp: OtpWhenOn
}, { additionalProperties: false, $id: 'ChangeEmailBody', title: 'ChangeEmailBody' })

export const DeleteMeBody = Type.Object({
  password: CurrentPassword,
  otp: OtpWhenOn
}, { additionalProperties: false, $id: 'DeleteMeBody', title: 'DeleteMeBody' })

export const Accepted = Type.Object({
  message: Type.String()
}, { $id: 'Accepted', title: 'Accepted', description: 'The request was taken; what follows goes by mail' })

export const Session = Type.Object({
  id: Type.String({ description: 'Opaque: names the session, never a token' }),
  created_at: Timestamp,
  last_used_at: Type.String({ format: 'date-time', description: 'The last login or refresh in this session (not every request)' }),
  expires_at: Timestamp,
  ip: NullableString({ description: 'The client address at login' }),
  user_agent: NullableString({ description: 'The User-Agent at login' }),
  amr: Type.Array(Type.Union([Type.Literal('pwd'), Type.Literal('otp'), Type.Literal('rc'), Type.Literal('hwk')]), {
    description: 'How the session was opened (RFC 8176): `pwd` password, `otp` authenticator code, `rc` recovery code, `hwk` passkey'
  }),
  current: Type.Boolean({ description: 'Whether the calling token belongs to this session' })
}, { $id: 'Session', title: 'Session' })

export const SessionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })
})

/** Documents the multipart body of an avatar upload; `readSingleFile` enforces it (one file part, `file`). */
export const AvatarUpload = Type.Object({
  file: Type.String({ format: 'binary', description: 'A JPEG, PNG, WebP or GIF image, at most 5 MB' })
}, { additionalProperties: false, $id: 'AvatarUpload', title: 'AvatarUpload' })

export const SessionPage = pageOf(Session, 'SessionPage')
