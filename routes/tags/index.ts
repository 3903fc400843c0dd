import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponse, PageQuery, ref } from '../../schemas/common.js'
import { TagPage } from '../../schemas/posts.js'
import { listTags } from '../../src/domain/tags.js'

/** GET /tags: the tags in use, most used first. */
const tagsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    schema: {
      tags: ['posts'],
      operationId: 'listTags',
      summary: 'The tags posts carry, most used first',
      description: 'Ties go by name. A tag no post carries any more is not listed. Filter posts by one with `GET /posts?tag=`.',
      querystring: PageQuery,
      response: { 200: { ...ref(TagPage), description: 'A page of tags' }, 400: errorResponse('Invalid or repeated skip/limit') }
    }
  }, async (request) => await listTags(app.db, request.query))
}

export default tagsRoutes
