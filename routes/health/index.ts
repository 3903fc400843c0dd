import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponse } from '../../schemas/common.js'
import { prepareHealthCheck } from '../../src/db/client.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const databaseAnswers = prepareHealthCheck(app.db)

  app.get('/health', {
    schema: {
      tags: ['ops'],
      operationId: 'health',
      summary: 'Whether the server and its database answer',
      response: {
        200: Type.Object({ status: Type.Literal('ok') }, { description: 'The server and its database answer' }),
        503: errorResponse('The database does not answer')
      }
    }
  }, async (request) => {
    if (!databaseAnswers()) {
      request.log.error('health check: database unavailable')
      throw Object.assign(app.httpErrors.serviceUnavailable('Database unavailable'), { expose: true })
    }
    return { status: 'ok' as const }
  })
}

export default healthRoutes
