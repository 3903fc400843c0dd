import type { FastifyInstance, FastifyRequest } from 'fastify'
import { confirmEmail, resetPassword } from '../../src/domain/accounts.js'
import { hashPassword } from '../../src/domain/passwords.js'
import { assertAcceptablePassword } from '../../src/domain/users.js'

// What following a mailed link does, whether the link's token arrives as JSON at /auth/* or from the
// minimal pages at /verify-email and /reset-password (routes/pages): written once for both.

/** Spends a verification or e-mail-change link; an e-mail change also notifies the old address. */
export async function followVerifyLink (app: FastifyInstance, request: FastifyRequest, token: string): Promise<void> {
  const confirmed = await confirmEmail(app.db, token, request.ip)
  if (confirmed.previous !== confirmed.email) {
    app.mailEmailChanged(confirmed.previous, confirmed.email)
    request.log.info({ userId: confirmed.userId }, 'e-mail address changed')
  } else {
    request.log.info({ userId: confirmed.userId }, 'e-mail address verified')
  }
}

/** Spends a reset link: the password becomes `next` (if the rules allow it) and every session ends. */
export async function followResetLink (app: FastifyInstance, request: FastifyRequest, token: string, next: string): Promise<void> {
  assertAcceptablePassword(next)
  const userId = await resetPassword(app.db, token, await hashPassword(next), request.ip)
  request.log.info({ userId }, 'password reset')
}
