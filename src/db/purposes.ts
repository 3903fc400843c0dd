/** What a mailed single-use link is for. */
export const TOKEN_PURPOSES = ['verify_email', 'password_reset', 'email_change'] as const
export type TokenPurpose = typeof TOKEN_PURPOSES[number]
