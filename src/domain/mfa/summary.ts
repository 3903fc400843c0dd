import type { UserRow } from '../../db/index.js'

/** What the user has of second factors, as `GET /users/me` shows it. */
export interface MfaSummary { totp: boolean, passkeys: number, recovery_codes_left: number }

/** Read off the user's row, whose counts the factor changes keep in their own transactions. */
export function mfaSummary (user: Pick<UserRow, 'mfaTotp' | 'mfaPasskeys' | 'mfaRecoveryCodes'>): MfaSummary {
  return { totp: user.mfaTotp, passkeys: user.mfaPasskeys, recovery_codes_left: user.mfaRecoveryCodes }
}
