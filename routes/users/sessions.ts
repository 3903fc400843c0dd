import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import { errorResponse, PageQuery, ref } from '../../schemas/common.js'
import { SessionPage, SessionParams } from '../../schemas/users.js'
import { endSession, listSessions } from '../../src/domain/sessions.js'
import { errors } from '../../src/domain/errors.js'

/** The caller's logins on every device, and ending one of them. */
const sessionsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me/sessions', {
    preHandler: app.authenticate,
    schema: {
      tags: ['users'],
      operationId: 'listSessions',
      summary: 'The calling user\'s open sessions, newest first',
      description: '`current` marks the session of the calling token; `last_used_at` moves at login and at each refresh.',
      querystring: PageQuery,
      response: { 200: { ...ref(SessionPage), description: 'A page of the caller\'s open sessions' }, 400: errorResponse('Invalid or repeated skip/limit') }
    }
  }, async (request) => {
    const me = userOf(request)
    return await listSessions(app.db, me.id, me.sessionId, request.query)
  })

  app.delete('/me/sessions/:id', {
    preHandler: app.authenticate,
    schema: {
      tags: ['users'],
      operationId: 'deleteSession',
      summary: 'End one of the calling user\'s sessions',
      description: 'As a logout of that session: its refresh and access tokens stop working at once.',
      params: SessionParams,
      response: {
        204: Type.Null({ description: 'The session is ended' }),
        400: errorResponse('The id is not a session id'),
        404: errorResponse('Session not found')
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    if (!await endSession(app.db, me.id, request.params.id)) throw errors.sessionNotFound()
    request.log.info({ userId: me.id }, 'session ended by its user')
    return reply.code(204).send(null)
  })
}

export default sessionsRoutes
