import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { userOf } from '../../plugins/auth.js'
import { conduitError, ProfileResponse, UsernameParams } from '../../schemas/conduit.js'
import type { UserRow } from '../../src/db/index.js'
import { errors } from '../../src/domain/errors.js'
import { follow, isFollowing, unfollow } from '../../src/domain/follows.js'
import { findUserByUsername } from '../../src/domain/users.js'
import { profileView } from './views.js'

const notFound = conduitError('No user has this username')

/** Conduit's profiles and follows, on Inkwell's follows (src/domain/follows.ts). */
const profilesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  async function userNamed (username: string): Promise<UserRow> {
    const user = await findUserByUsername(app.db, username)
    if (user === undefined) throw errors.userNotFound()
    return user
  }
  const profileOf = async (request: FastifyRequest, user: UserRow) =>
    ({ profile: profileView(request, user, request.user ? await isFollowing(app.db, request.user.id, user.id) : false) })

  app.get('/profiles/:username', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['Profile'],
      operationId: 'GetProfileByUsername',
      summary: 'Get a profile',
      description: 'Usernames are compared regardless of case. `following` is false without a token.',
      params: UsernameParams,
      response: { 200: { ...ProfileResponse, description: 'The profile' }, 404: notFound }
    }
  }, async (request) => await profileOf(request, await userNamed(request.params.username)))

  app.post('/profiles/:username/follow', {
    preHandler: app.requirePermission('user:follow'),
    schema: {
      tags: ['Profile'],
      operationId: 'FollowUserByUsername',
      summary: 'Follow a user (idempotent)',
      description: 'Following oneself is refused (422).',
      params: UsernameParams,
      response: { 200: { ...ProfileResponse, description: 'The profile, followed' }, 404: notFound }
    }
  }, async (request) => {
    const user = await userNamed(request.params.username)
    await follow(app.db, userOf(request).id, user.id)
    return await profileOf(request, user)
  })

  app.delete('/profiles/:username/follow', {
    preHandler: app.requirePermission('user:follow'),
    schema: {
      tags: ['Profile'],
      operationId: 'UnfollowUserByUsername',
      summary: 'Unfollow a user (idempotent)',
      params: UsernameParams,
      response: { 200: { ...ProfileResponse, description: 'The profile, not followed' }, 404: notFound }
    }
  }, async (request) => {
    const user = await userNamed(request.params.username)
    await unfollow(app.db, userOf(request).id, user.id)
    return await profileOf(request, user)
  })
}

export default profilesRoutes
