import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import { errorResponse, IdParams, ref } from '../../schemas/common.js'
import { CreatePostBody, Post, PostListQuery, PostPage, UpdatePostBody } from '../../schemas/posts.js'
import {
  createPost, deletePost, getPostView, likePost, listPosts, postToChange, unlikePost, updatePost
} from '../../src/domain/posts.js'

const badId = errorResponse('The id is not a positive integer')
const notFound = errorResponse('Post not found')

const postsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['posts'],
      operationId: 'listPosts',
      summary: 'Posts, newest first: all, or one author\'s, one tag\'s, one user\'s liked ones',
      description: 'The filters combine (`?author=7&tag=news`: the posts of user 7 tagged news). An author or a tag ' +
        'that nobody has gives an empty page. A cursor continues only the list (filters included) that issued it.',
      querystring: PostListQuery,
      response: {
        200: { ...ref(PostPage), description: 'A page of posts, newest first' },
        400: errorResponse('Invalid or repeated skip/limit/cursor/author/tag/liked_by, a cursor this list did not issue, or a cursor with skip')
      }
    }
  }, async (request) => {
    const { author, tag, liked_by: likedBy, ...page } = request.query
    return await listPosts(app.db, app.cursors, page, request.user?.id, { authorId: author, tag, likedBy })
  })

  app.get('/:id', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['posts'],
      operationId: 'getPost',
      summary: 'One post',
      params: IdParams,
      response: { 200: { ...ref(Post), description: 'The post' }, 400: badId, 404: notFound }
    }
  }, async (request) => getPostView(app.db, request.params.id, request.user?.id))

  app.post('', {
    preHandler: app.requirePermission('post:create'),
    schema: {
      tags: ['posts'],
      operationId: 'createPost',
      summary: 'Write a post',
      description: 'The author is always the caller; a body naming an author is refused (400). The post gets a slug made from its title.',
      body: ref(CreatePostBody),
      response: { 201: { ...ref(Post), description: 'The created post' }, 400: errorResponse('Invalid body, unknown field, or a tag that is not one') }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    const id = await createPost(app.db, me.id, request.body)
    return reply.code(201).send(await getPostView(app.db, id, me.id))
  })

  app.patch('/:id', {
    preHandler: app.requirePermission('post:edit_own'),
    schema: {
      tags: ['posts'],
      operationId: 'updatePost',
      summary: 'Change a post\'s title, content, description or tags',
      description: 'Only the author may, unless their role grants `post:edit_any` (moderators, admins). A new title gives a new slug.',
      params: IdParams,
      body: ref(UpdatePostBody),
      response: {
        200: { ...ref(Post), description: 'The post as it is now' },
        400: errorResponse('Invalid id or body, an unknown field, or a tag that is not one'),
        403: errorResponse('Inactive account, or `Not your post`'),
        404: notFound
      }
    }
  }, async (request) => {
    const me = userOf(request)
    await postToChange(app.db, request.params.id, me, 'post:edit_any')
    await updatePost(app.db, request.params.id, request.body)
    return await getPostView(app.db, request.params.id, me.id)
  })

  app.delete('/:id', {
    preHandler: app.requirePermission('post:delete_own'),
    schema: {
      tags: ['posts'],
      operationId: 'deletePost',
      summary: 'Delete a post',
      description: 'Only the author may, unless their role grants `post:delete_any` (moderators, admins).',
      params: IdParams,
      response: {
        204: Type.Null({ description: 'Deleted' }),
        400: badId,
        403: errorResponse('Inactive account, or `Not your post`'),
        404: notFound
      }
    }
  }, async (request, reply) => {
    await postToChange(app.db, request.params.id, userOf(request), 'post:delete_any')
    await deletePost(app.db, request.params.id)
    return reply.code(204).send(null)
  })

  app.put('/:id/like', {
    preHandler: app.requirePermission('post:like'),
    schema: {
      tags: ['posts'],
      operationId: 'likePost',
      summary: 'Like a post (idempotent)',
      params: IdParams,
      response: { 204: Type.Null({ description: 'The caller likes the post' }), 400: badId, 404: notFound }
    }
  }, async (request, reply) => {
    await likePost(app.db, userOf(request).id, request.params.id)
    return reply.code(204).send(null)
  })

  app.delete('/:id/like', {
    preHandler: app.requirePermission('post:like'),
    schema: {
      tags: ['posts'],
      operationId: 'unlikePost',
      summary: 'Stop liking a post (idempotent)',
      params: IdParams,
      response: { 204: Type.Null({ description: 'The caller does not like the post' }), 400: badId, 404: notFound }
    }
  }, async (request, reply) => {
    await unlikePost(app.db, userOf(request).id, request.params.id)
    return reply.code(204).send(null)
  })
}

export default postsRoutes
