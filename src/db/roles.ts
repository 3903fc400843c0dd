/** The roles a user can hold; both engines store one of these strings. */
export const ROLES = ['user', 'moderator', 'admin'] as const
export type Role = typeof ROLES[number]

/** What a mailed single-use link is for. */
export const TOKEN_PURPOSES = ['verify_email', 'password_reset', 'email_change'] as const
export type TokenPurpose = typeof TOKEN_PURPOSES[number]
