import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import { errorResponse, IdParams, ref } from '../../schemas/common.js'
import { Comment, CommentListQuery, CommentPage, CommentParams, CreateCommentBody } from '../../schemas/posts.js'
import { commentView, createComment, deleteComment, listComments } from '../../src/domain/comments.js'

const postNotFound = errorResponse('Post not found')

/** A post's comments: /posts/{id}/comments. */
const commentsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/:id/comments', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['comments'],
      operationId: 'listComments',
      summary: 'A post\'s comments, newest or oldest first',
      params: IdParams,
      querystring: CommentListQuery,
      response: {
        200: { ...ref(CommentPage), description: 'A page of the post\'s comments' },
        400: errorResponse('Invalid id, invalid or repeated skip/limit/cursor/order, a cursor this list did not issue, or a cursor with skip'),
        404: postNotFound
      }
    }
  }, async (request) => {
    const page = await listComments(app.db, app.cursors, request.params.id, request.query, request.user?.id)
    return { ...page, items: page.items.map(commentView) }
  })

  app.post('/:id/comments', {
    preHandler: app.requirePermission('comment:create'),
    schema: {
      tags: ['comments'],
      operationId: 'createComment',
      summary: 'Comment on a post',
      params: IdParams,
      body: ref(CreateCommentBody),
      response: {
        201: { ...ref(Comment), description: 'The comment' },
        400: errorResponse('Invalid id or body, or an unknown field'),
        404: postNotFound
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    return reply.code(201).send(commentView(await createComment(app.db, request.params.id, me.id, request.body.body)))
  })

  app.delete('/:id/comments/:comment_id', {
    preHandler: app.requirePermission('comment:delete_own'),
    schema: {
      tags: ['comments'],
      operationId: 'deleteComment',
      summary: 'Delete a comment',
      description: 'Only its author may, unless their role grants `comment:delete_any` (moderators, admins). ' +
        'The post is looked for first, then the comment on that post.',
      params: CommentParams,
      response: {
        204: Type.Null({ description: 'Deleted' }),
        400: errorResponse('An id is not a positive integer'),
        403: errorResponse('Inactive account, or `Not your comment`'),
        404: errorResponse('`Post not found`, or `Comment not found` (also for a comment of another post)')
      }
    }
  }, async (request, reply) => {
    await deleteComment(app.db, request.params.id, request.params.comment_id, userOf(request))
    return reply.code(204).send(null)
  })
}

export default commentsRoutes
