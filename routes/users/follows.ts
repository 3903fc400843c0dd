import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import { errorResponse, IdParams } from '../../schemas/common.js'
import { follow, unfollow } from '../../src/domain/follows.js'

const notFound = errorResponse('User not found')

/** Following authors: /users/{id}/follow. Their posts make the caller's feed (GET /feed). */
const followsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.put('/:id/follow', {
    preHandler: app.requirePermission('user:follow'),
    schema: {
      tags: ['users'],
      operationId: 'followUser',
      summary: 'Follow a user (idempotent)',
      params: IdParams,
      response: {
        204: Type.Null({ description: 'The caller follows the user' }),
        400: errorResponse('The id is not a positive integer, or `You cannot follow yourself`'),
        404: notFound
      }
    }
  }, async (request, reply) => {
    await follow(app.db, userOf(request).id, request.params.id)
    return reply.code(204).send(null)
  })

  app.delete('/:id/follow', {
    preHandler: app.requirePermission('user:follow'),
    schema: {
      tags: ['users'],
      operationId: 'unfollowUser',
      summary: 'Stop following a user (idempotent)',
      params: IdParams,
      response: { 204: Type.Null({ description: 'The caller does not follow the user' }), 400: errorResponse('The id is not a positive integer'), 404: notFound }
    }
  }, async (request, reply) => {
    await unfollow(app.db, userOf(request).id, request.params.id)
    return reply.code(204).send(null)
  })
}

export default followsRoutes
