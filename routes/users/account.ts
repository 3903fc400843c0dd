import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import { clientOf, reauthenticate } from '../../plugins/login.js'
import { TokenPair } from '../../schemas/auth.js'
import { errorResponse, ref } from '../../schemas/common.js'
import { Accepted, ChangeEmailBody, ChangePasswordBody, DeleteMeBody } from '../../schemas/users.js'
import { startEmailChange, startVerification } from '../../src/domain/accounts.js'
import { errors } from '../../src/domain/errors.js'
import { removeAvatarFile } from '../../src/domain/avatars.js'
import { hashPassword } from '../../src/domain/passwords.js'
import { assertAcceptablePassword, deleteUser, replacePasswordHash } from '../../src/domain/users.js'

const tooMany = errorResponse('Too many wrong passwords; `Retry-After` says when to try again')

/** What the account holder does with their own account, re-authenticating where it matters. */
const accountRoutes: FastifyPluginAsyncTypebox = async (app) => {

  app.put('/me/password', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'changePassword',
      summary: 'Change the calling user\'s password',
      description: 'Ends every session of the user and returns the first token pair of a new one. A wrong ' +
        'current password counts towards `LOGIN_FAILURE_LIMIT` like a failed login (then 429).',
      body: ref(ChangePasswordBody),
      response: {
        200: { ...ref(TokenPair), description: 'A fresh token pair', headers: { 'cache-control': Type.Literal('no-store') } },
        400: errorResponse('Wrong current password, a missing or wrong code (when an authenticator app is on), invalid body, or a password that is too common'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    const { current_password: current, new_password: next, otp } = request.body
    const stored = await reauthenticate(request, { password: current, otp }, 'Current password is incorrect')
    assertAcceptablePassword(next)
    const passwordHash = await hashPassword(next)
    // The hash is replaced only if it is still the one verified above (else a concurrent change won),
    // and the user's sessions and reset links end in the transaction that starts the new session.
    const pair = await app.db.transaction(async (tx) => {
      if (!await replacePasswordHash(tx, stored.id, stored.passwordHash, passwordHash)) return undefined
      await app.tokens.logoutAll(stored.id, tx)
      return await app.tokens.issue(stored.id, passwordHash, clientOf(request), tx)
    })
    if (pair === undefined) throw errors.wrongPassword('Current password is incorrect')
    request.log.info({ userId: stored.id }, 'password changed')
    return pair
  })

  app.post('/me/email', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'changeEmail',
      summary: 'Ask to change the calling user\'s e-mail address',
      description: 'Mails a confirmation link to the new address; the address changes only when the link is ' +
        'followed (`POST /auth/verify-email`), and a notice then goes to the old address. The answer is the ' +
        'same whether or not another account uses the new address (nothing is mailed then). A wrong password ' +
        'counts towards `LOGIN_FAILURE_LIMIT` (then 429).',
      body: ref(ChangeEmailBody),
      response: {
        202: { ...ref(Accepted), description: 'If the address is free, a confirmation link is on its way to it' },
        400: errorResponse('Wrong password, a missing or wrong code (when an authenticator app is on), or an invalid body'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    const stored = await reauthenticate(request, { password: request.body.current_password, otp: request.body.otp })
    const newEmail = request.body.new_email
    app.afterResponse(async () => {
      await app.mailLink('email_change', stored.id, newEmail.toLowerCase(), () => startEmailChange(app.db, stored.id, newEmail, app.config.emailTokenTtl))
    }, request.log)
    return reply.code(202).send({ message: 'If the address can be used, a confirmation link has been sent to it' })
  })

  app.post('/me/verify-email', {
    preHandler: app.authenticate,
    schema: {
      tags: ['users'],
      operationId: 'resendVerification',
      summary: 'Mail a fresh verification link to the calling user\'s address',
      description: 'Voids the earlier links. At most 3 verification mails an hour: past that the answer is the same, and nothing is sent.',
      response: {
        202: { ...ref(Accepted), description: 'A verification link is on its way' },
        409: errorResponse('The address is verified already')
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    if (me.emailVerified) throw errors.emailAlreadyVerified()
    app.afterResponse(async () => {
      await app.mailLink('verify_email', me.id, me.email, () => startVerification(app.db, me, app.config.emailTokenTtl))
    }, request.log)
    return reply.code(202).send({ message: 'A verification link has been sent to your address' })
  })

  app.delete('/me', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'deleteMe',
      summary: 'Delete the calling user\'s account',
      description: 'Asks for the password again. Removes the account with its posts and likes; its tokens stop ' +
        'working at once. The last active admin cannot delete their account (409). A wrong password counts ' +
        'towards `LOGIN_FAILURE_LIMIT` (then 429).',
      body: ref(DeleteMeBody),
      response: {
        204: Type.Null({ description: 'Deleted' }),
        400: errorResponse('Wrong or missing password, or a missing or wrong code (when an authenticator app is on)'),
        409: errorResponse('The last active admin cannot be deleted'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    const stored = await reauthenticate(request, request.body)
    const avatar = await deleteUser(app.db, stored.id, { actorId: stored.id, ip: request.ip })
    await removeAvatarFile(app.uploadsDir, avatar, request.log)
    request.log.info({ userId: stored.id }, 'account deleted')
    return reply.code(204).send(null)
  })
}

export default accountRoutes
