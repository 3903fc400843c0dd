import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import { TokenPair } from '../../schemas/auth.js'
import { errorResponse, IdParams, PageQuery, ref } from '../../schemas/common.js'
import { PostPage } from '../../schemas/posts.js'
import { ChangePasswordBody, UpdateMeBody, UserPrivate, UserPublic } from '../../schemas/users.js'
import { removeAvatarFile } from '../../src/domain/avatars.js'
import { hashPassword, verifyPassword } from '../../src/domain/passwords.js'
import { listPosts } from '../../src/domain/posts.js'
import {
  assertAcceptablePassword, deleteUser, findUserById, privateView, publicView, replacePasswordHash, updateProfile
} from '../../src/domain/users.js'

const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    preHandler: app.authenticate,
    schema: {
      tags: ['users'],
      operationId: 'getMe',
      summary: 'The calling user, as they see themselves',
      response: { 200: ref(UserPrivate) }
    }
  }, async (request) => privateView(userOf(request)))

  app.patch('/me', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'updateMe',
      summary: 'Change the calling user\'s username, email or bio',
      description: 'Only the fields sent change. Role and active flag are not yours to set.',
      body: UpdateMeBody,
      response: {
        200: ref(UserPrivate),
        400: errorResponse('Invalid body or unknown field'),
        409: errorResponse('Email or username already taken')
      }
    }
  }, async (request) => privateView(await updateProfile(app.db, userOf(request).id, request.body)))

  app.put('/me/password', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'changePassword',
      summary: 'Change the calling user\'s password',
      description: 'Ends every session of the user and returns the first token pair of a new one.',
      body: ChangePasswordBody,
      response: {
        200: { ...ref(TokenPair), description: 'A fresh token pair', headers: { 'cache-control': Type.Literal('no-store') } },
        400: errorResponse('Wrong current password, invalid body, or a password that is too common')
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    const me = userOf(request)
    const { current_password: current, new_password: next } = request.body
    const wrongPassword = () => Object.assign(app.httpErrors.badRequest('Current password is incorrect'), { code: 'WRONG_PASSWORD' })
    const stored = await findUserById(app.db, me.id)
    if (stored === undefined || !await verifyPassword(stored.passwordHash, current)) {
      request.log.info({ userId: me.id }, 'password change refused: wrong current password')
      throw wrongPassword()
    }
    assertAcceptablePassword(next)
    const passwordHash = await hashPassword(next)
    // The hash is replaced only if it is still the one verified above (else a concurrent change won),
    // and the user's sessions end in the same transaction that starts the new one.
    const pair = await app.db.transaction(async (tx) => {
      if (!await replacePasswordHash(tx, me.id, stored.passwordHash, passwordHash)) return undefined
      await app.tokens.logoutAll(me.id, tx)
      return await app.tokens.issue(me.id, passwordHash, tx)
    })
    if (pair === undefined) throw wrongPassword()
    request.log.info({ userId: me.id }, 'password changed')
    return pair
  })

  app.delete('/me', {
    preHandler: app.authenticate,
    schema: {
      tags: ['users'],
      operationId: 'deleteMe',
      summary: 'Delete the calling user\'s account',
      description: 'Removes the account with its posts and likes; its tokens stop working at once. ' +
        'The last active admin cannot delete their account (409).',
      response: {
        204: Type.Null({ description: 'Deleted' }),
        409: errorResponse('The last active admin cannot be deleted')
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    const avatar = await deleteUser(app.db, me.id, { actorId: me.id, ip: request.ip })
    await removeAvatarFile(app.uploadsDir, avatar, request.log)
    request.log.info({ userId: me.id }, 'account deleted')
    return reply.code(204).send(null)
  })

  app.get('/:id', {
    schema: {
      tags: ['users'],
      operationId: 'getUser',
      summary: 'A user\'s public profile',
      params: IdParams,
      response: {
        200: ref(UserPublic),
        400: errorResponse('The id is not a positive integer'),
        404: errorResponse('User not found')
      }
    }
  }, async (request) => {
    const user = await findUserById(app.db, request.params.id)
    if (user === undefined) throw app.httpErrors.notFound('User not found')
    return publicView(user)
  })

  app.get('/:id/posts', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['users', 'posts'],
      operationId: 'listUserPosts',
      summary: 'A user\'s posts, newest first',
      params: IdParams,
      querystring: PageQuery,
      response: {
        200: ref(PostPage),
        400: errorResponse('Invalid id, or invalid or repeated skip/limit'),
        404: errorResponse('User not found')
      }
    }
  }, async (request) => {
    if (await findUserById(app.db, request.params.id) === undefined) throw app.httpErrors.notFound('User not found')
    return await listPosts(app.db, request.query, request.user?.id, request.params.id)
  })
}

export default usersRoutes
