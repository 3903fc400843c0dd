import { httpErrors } from '@fastify/sensible'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ClientInfo } from '../src/domain/sessions.js'
import { verifyPassword } from '../src/domain/passwords.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Checks the password of a known account where it is asked again (password change, e-mail change,
     * account deletion). A wrong one counts towards LOGIN_FAILURE_LIMIT for the account and client,
     * exactly as a failed login with the username does; over the limit it throws the login's 429.
     */
    verifyAccountPassword: (request: FastifyRequest, user: { id: number, username: string, passwordHash: string }, password: string) => Promise<boolean>
  }
}

/** The 429 of too many wrong passwords, with the seconds to wait. */
export function throttledError (wait: number) {
  return Object.assign(httpErrors.tooManyRequests('Too many failed logins; try again later'), {
    code: 'LOGIN_THROTTLED', headers: { 'retry-after': String(wait) }
  })
}

/** Who is logging in, from where: recorded with the session for the user's list of sessions. */
export function clientOf (request: FastifyRequest): ClientInfo {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null }
}

export default fp(async (app) => {
  app.decorate('verifyAccountPassword', async (request: FastifyRequest, user: { id: number, username: string, passwordHash: string }, password: string) => {
    // The key a login with the username uses, so both kinds of attempt share one count.
    const account = user.username.toLowerCase()
    const wait = await app.loginThrottle.retryAfter(account, request.ip)
    if (wait > 0) {
      request.log.warn({ userId: user.id }, 'password check throttled')
      app.metrics.refused('login_failures')
      throw throttledError(wait)
    }
    if (await verifyPassword(user.passwordHash, password)) {
      await app.loginThrottle.reset(account, request.ip)
      return true
    }
    await app.loginThrottle.recordFailure(account, request.ip)
    request.log.info({ userId: user.id }, 'wrong password where the account asked for it again')
    return false
  })
}, { name: 'reauth', dependencies: ['counters', 'metrics'] })
