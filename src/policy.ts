/**
 * The policy: who may do what, and the bounds of a password. A leaf: it imports nothing, so the
 * schemas, the database layer, the domain and the guards all read the same rules from here.
 */

/** The roles a user can hold; both engines store one of these strings. */
export const ROLES = ['user', 'moderator', 'admin'] as const
export type Role = typeof ROLES[number]

/** Every permission, as `resource:action`. */
export const PERMISSIONS = [
  'post:create', 'post:edit_own', 'post:delete_own', 'post:like',
  'comment:create', 'comment:delete_own', 'user:follow',
  'post:edit_any', 'post:delete_any', 'comment:delete_any',
  'user:manage', 'audit:read'
] as const
export type Permission = typeof PERMISSIONS[number]

const userPermissions: Permission[] = [
  'post:create', 'post:edit_own', 'post:delete_own', 'post:like', 'comment:create', 'comment:delete_own', 'user:follow'
]

/** The one table that says what each role may do. */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  user: userPermissions,
  moderator: [...userPermissions, 'post:edit_any', 'post:delete_any', 'comment:delete_any'],
  admin: PERMISSIONS
}

export function hasPermission (role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission)
}

/** A new password's length in characters; what else it must be, src/domain/passwords.ts checks. */
export const PASSWORD_MIN_LENGTH = 8
export const PASSWORD_MAX_LENGTH = 128

/** What a post may carry: a short description, and tags (normalised by src/domain/tags.ts). */
export const DESCRIPTION_MAX_LENGTH = 300
export const TAGS_MAX = 10
export const TAG_MAX_LENGTH = 32
/** A comment's length in characters. */
export const COMMENT_MAX_LENGTH = 5_000
