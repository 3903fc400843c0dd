import type { Role } from '../db/roles.js'

export const PERMISSIONS = [
  'post:create', 'post:edit_own', 'post:delete_own', 'post:like',
  'post:edit_any', 'post:delete_any',
  'user:manage', 'audit:read'
] as const
export type Permission = typeof PERMISSIONS[number]

const userPermissions: Permission[] = ['post:create', 'post:edit_own', 'post:delete_own', 'post:like']

/** The one table that says what each role may do. */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  user: userPermissions,
  moderator: [...userPermissions, 'post:edit_any', 'post:delete_any'],
  admin: PERMISSIONS
}

export function hasPermission (role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission)
}
