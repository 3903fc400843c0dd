import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { userOf } from './auth.js'
import { loginService, type Caller, type Credentials, type LoginOutcome, type LoginPorts, type LoginService } from '../src/domain/login.js'
import type { RelyingParty } from '../src/domain/mfa/passkeys.js'
import { findUserById } from '../src/domain/users.js'
import { mfaKeys, type MfaKeys } from '../src/domain/mfa/secrets.js'

import type { TokenPair } from './tokens.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The login and re-authentication flows (src/domain/login.ts), wired to this app's throttle, tokens, mail and metrics. */
    login: LoginService<TokenPair>
    /** The same flows, the same throttle, for the Conduit API (/api): a login gives one long-lived access token (CONDUIT_TOKEN_TTL). */
    conduitLogin: LoginService<string>
    /** The keys that seal TOTP secrets and hash recovery codes. */
    mfaKeys: MfaKeys
    /** Where passkeys belong: WEBAUTHN_RP_ID (or APP_URL's host) and APP_URL's origin. */
    relyingParty: RelyingParty
  }
}

/** Who is logging in, from where: the throttle's client, what the user sees in their list of sessions, and the request's log. */
export function clientOf (request: FastifyRequest): Caller {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null, log: request.log }
}

/** The caller's stored row, with the password (and a code when TOTP is on) asked again: the login service's re-authentication. */
export function reauthenticate (request: FastifyRequest, credentials: Credentials, wrongPasswordMessage?: string) {
  return request.server.login.reauthenticate(userOf(request).id, credentials, clientOf(request), wrongPasswordMessage)
}

const LOGIN_LOG: Record<LoginOutcome, string> = {
  success: 'login succeeded',
  bad_credentials: 'login failed',
  throttled: 'login throttled',
  password_changed: 'login refused: the password changed while it was verified',
  mfa_required: 'login awaits a second factor',
  bad_code: 'login failed: wrong second-factor code'
}

export default fp(async (app) => {
  const keys = mfaKeys(app.config.mfaEncryptionKey ?? app.config.jwtSecret)
  app.decorate('mfaKeys', keys)
  app.decorate('relyingParty', { id: app.config.webauthnRpId, origin: new URL(app.config.appUrl).origin, name: 'Inkwell' })
  const ports = {
    db: app.db,
    throttle: app.loginThrottle,
    keys,
    recoveryCodeUsed: (user) => {
      app.afterResponse(async () => {
        const now = await findUserById(app.db, user.id)
        if (now !== undefined) app.mailRecoveryCodeUsed(now.email, now.mfaRecoveryCodes)
      }, app.log)
    },
    later: (task) => { app.afterResponse(task, app.log) },
    outcome: (outcome, flow, caller, userId) => {
      const log = caller.log ?? app.log
      if (outcome === 'throttled') {
        app.metrics.refused('login_failures')
        log.warn({ userId }, flow === 'login' ? 'login throttled' : 'password check throttled')
      } else if (flow === 'login') {
        log.info({ userId }, LOGIN_LOG[outcome])
      }
      // The login metric counts logins; a password asked again shows only when its limit refuses it.
      if (flow === 'login') app.metrics.login(outcome)
    }
  } satisfies Omit<LoginPorts<unknown>, 'startSession'>
  app.decorate('login', loginService<TokenPair>({ ...ports, startSession: (session, tx) => app.tokens.start(session, tx) }))
  app.decorate('conduitLogin', loginService<string>({
    ...ports,
    startSession: (session, tx) => app.tokens.startAccessOnly(session, app.config.conduitTokenTtl, tx)
  }))
}, { name: 'login', dependencies: ['config', 'db', 'counters', 'tokens', 'mail', 'metrics'] })
