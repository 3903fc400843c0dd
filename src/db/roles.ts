/** The roles a user can hold; both engines store one of these strings. */
export const ROLES = ['user', 'moderator', 'admin'] as const
export type Role = typeof ROLES[number]
