import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponse, Health, ref } from '../../schemas/common.js'
import { pingRedis } from '../../src/redis/client.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: {
      tags: ['ops'],
      operationId: 'health',
      summary: 'Whether the server, its database and Redis (when configured) answer',
      response: {
        200: { ...ref(Health), description: 'The server, its database and Redis (when configured) answer' },
        503: errorResponse('The database, or Redis, does not answer')
      }
    }
  }, async (request) => {
    if (app.redis !== null && !await pingRedis(app.redis)) {
      request.log.error('health check: Redis unavailable')
      throw Object.assign(app.httpErrors.serviceUnavailable('Redis unavailable'), { expose: true })
    }
    if (!await app.db.ping()) {
      request.log.error('health check: database unavailable')
      throw Object.assign(app.httpErrors.serviceUnavailable('Database unavailable'), { expose: true })
    }
    return { status: 'ok' as const }
  })
}

export default healthRoutes
