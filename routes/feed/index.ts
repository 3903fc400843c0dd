import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { userOf } from '../../plugins/auth.js'
import { CursorPageQuery, errorResponse, ref } from '../../schemas/common.js'
import { PostPage } from '../../schemas/posts.js'
import { listPosts } from '../../src/domain/posts.js'

/** GET /feed: the posts of the authors the caller follows. */
const feedRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    preHandler: app.authenticate,
    schema: {
      tags: ['posts'],
      operationId: 'getFeed',
      summary: 'The posts of the users the caller follows, newest first',
      description: 'Follow with `PUT /users/{id}/follow`. An author unfollowed leaves the feed at once.',
      querystring: CursorPageQuery,
      response: {
        200: { ...ref(PostPage), description: 'A page of the feed, newest first' },
        400: errorResponse('Invalid or repeated skip/limit/cursor, a cursor this list did not issue, or a cursor with skip')
      }
    }
  }, async (request) => {
    const me = userOf(request).id
    return await listPosts(app.db, app.cursors, request.query, me, { followedBy: me })
  })
}

export default feedRoutes
