import { generate } from 'otplib'
import type { App } from '../../src/app.js'
import type { TestUser } from '../helper.js'

/** The app's code for `secret` at now + `steps` × 30 s (the server accepts the steps -1, 0 and +1, each once). */
export const totpCode = (secret: string, steps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 })

export interface Enrolled { secret: string, recoveryCodes: string[] }

/**
 * Turns TOTP on for `user` through the API, confirming with the previous step's code, so the current
 * and the next step's codes are still unused for what the test does next.
 */
export async function enableTotp (app: App, user: Pick<TestUser, 'auth' | 'password'>): Promise<Enrolled> {
  const started = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: user.auth, payload: { password: user.password } })
  if (started.statusCode !== 200) throw new Error(`enrol: ${started.statusCode} ${started.body}`)
  const { secret } = started.json()
  const confirmed = await app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: user.auth, payload: { code: await totpCode(secret, -1) } })
  if (confirmed.statusCode !== 200) throw new Error(`confirm: ${confirmed.statusCode} ${confirmed.body}`)
  return { secret, recoveryCodes: confirmed.json().recovery_codes }
}

/** The first step of a login with a second factor on: the `mfa_token` of the 403. */
export async function mfaToken (app: App, username: string, password: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })
  if (res.statusCode !== 403) throw new Error(`expected MFA_REQUIRED: ${res.statusCode} ${res.body}`)
  return res.json().mfa_token
}

export const mfaGrant = (app: App, token: string, otp: string, options: { form?: boolean } = {}) => options.form === true
  ? app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'mfa_otp', mfa_token: token, otp }).toString() })
  : app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'mfa_otp', mfa_token: token, otp } })
