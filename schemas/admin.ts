import { Type } from '@sinclair/typebox'
import { Id, NullableInteger, NullableString, pageOf, ref, Timestamp } from './common.js'
import { Role, UserPrivate } from './users.js'

// Without `mfa`: a list of users does not count every user's factors.
const adminFields = Type.Omit(UserPrivate, ['mfa']).properties

export const AdminUser = Type.Object({ ...adminFields, updated_at: Timestamp },
  { $id: 'AdminUser', title: 'AdminUser', description: 'A user as an admin sees them' })

export const AdminUserPage = pageOf(AdminUser, 'AdminUserPage')

export const AdminUserChange = Type.Object({
  role: Type.Optional(ref(Role)),
  is_active: Type.Optional(Type.Boolean())
}, { additionalProperties: false, $id: 'AdminUserChange', title: 'AdminUserChange', description: 'Only the fields given change' })

export const AuditEntry = Type.Object({
  id: Id,
  actor_id: NullableInteger({ description: 'Who acted; kept after that user is deleted' }),
  action: Type.String({ examples: ['user.role_change'] }),
  target_type: Type.String({ examples: ['user'] }),
  target_id: NullableInteger(),
  ip: NullableString(),
  details: Type.Record(Type.String(), Type.Unknown()),
  created_at: Timestamp
}, { $id: 'AuditEntry', title: 'AuditEntry' })

export const AuditPage = pageOf(AuditEntry, 'AuditPage')
