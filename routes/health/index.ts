import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { sql } from 'drizzle-orm'
import { errorResponse } from '../../schemas/common.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
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
  }, async () => {
    try {
      app.db.get(sql`select 1`)
    } catch (err) {
      app.log.error({ err }, 'health check: database unavailable')
      throw Object.assign(app.httpErrors.serviceUnavailable('Database unavailable'), { expose: true })
    }
    return { status: 'ok' as const }
  })
}

export default healthRoutes
