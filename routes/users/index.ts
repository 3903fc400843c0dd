import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { userOf } from '../../plugins/auth.js'
import { CursorPageQuery, errorResponse, IdParams, ref } from '../../schemas/common.js'
import { PostPage } from '../../schemas/posts.js'
import { UpdateMeBody, UserPrivate, UserPublic } from '../../schemas/users.js'
import { isFollowing } from '../../src/domain/follows.js'
import { listPosts } from '../../src/domain/posts.js'
import { existingUser, privateView, publicView, updateProfile } from '../../src/domain/users.js'

const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    preHandler: app.authenticate,
    schema: {
      tags: ['users'],
      operationId: 'getMe',
      summary: 'The calling user, as they see themselves',
      response: { 200: { ...ref(UserPrivate), description: 'The calling user' } }
    }
  }, async (request) => privateView(userOf(request)))

  app.patch('/me', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'updateMe',
      summary: 'Change the calling user\'s username or bio',
      description: 'Only the fields sent change. Role and active flag are not yours to set; the e-mail ' +
        'address changes through `POST /users/me/email` (an `email` here is refused with 400).',
      body: ref(UpdateMeBody),
      response: {
        200: { ...ref(UserPrivate), description: 'The user as it is now' },
        400: errorResponse('Invalid body or unknown field'),
        409: errorResponse('Username already taken')
      }
    }
  }, async (request) => privateView(await updateProfile(app.db, userOf(request).id, request.body)))

  app.get('/:id', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['users'],
      operationId: 'getUser',
      summary: 'A user\'s public profile',
      params: IdParams,
      response: {
        200: { ...ref(UserPublic), description: 'The user' },
        400: errorResponse('The id is not a positive integer'),
        404: errorResponse('User not found')
      }
    }
  }, async (request) => {
    const user = await existingUser(app.db, request.params.id)
    const viewer = request.user?.id
    return viewer === undefined ? publicView(user) : { ...publicView(user), following: await isFollowing(app.db, viewer, user.id) }
  })

  app.get('/:id/posts', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['users', 'posts'],
      operationId: 'listUserPosts',
      summary: 'A user\'s posts, newest first',
      params: IdParams,
      querystring: CursorPageQuery,
      response: {
        200: { ...ref(PostPage), description: 'A page of the user\'s posts, newest first' },
        400: errorResponse('Invalid id, invalid or repeated skip/limit/cursor, a cursor this list did not issue, or a cursor with skip'),
        404: errorResponse('User not found')
      }
    }
  }, async (request) => {
    await existingUser(app.db, request.params.id)
    return await listPosts(app.db, app.cursors, request.query, request.user?.id, { authorId: request.params.id })
  })
}

export default usersRoutes
