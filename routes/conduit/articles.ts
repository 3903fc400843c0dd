import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import {
  ArticleResponse, ArticlesQuery, CommentParams, CommentResponse, conduitError, FeedQuery, MultipleArticlesResponse,
  MultipleCommentsResponse, NewArticleBody, NewCommentBody, SlugParams, TagsResponse, UpdateArticleBody
} from '../../schemas/conduit.js'
import { createComment, deleteComment, listComments } from '../../src/domain/comments.js'
import {
  createPost, deletePost, getPostRow, likePost, listPostRows, postToChange, unlikePost, updatePost, type PostFilter
} from '../../src/domain/posts.js'
import { listTags } from '../../src/domain/tags.js'
import { findUserByUsername } from '../../src/domain/users.js'
import { articleOfList, articleView, commentView } from './views.js'

const notFound = conduitError('No article has this slug')
/** The most comments and tags one answer carries: Conduit's lists of them have no pages. */
const COMMENTS_MAX = 500
const TAGS_MAX = 100

/** Conduit's articles (Inkwell's posts, found by slug), their comments, favorites (likes) and tags. */
const articlesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  /** A page of articles as Conduit lists them; `null` for a filter naming nobody (an empty list). */
  async function articlePage (request: Parameters<typeof articleOfList>[0], filter: PostFilter | null, limit: number, offset: number, viewerId?: number) {
    if (filter === null) return { articles: [], articlesCount: 0 }
    const page = await listPostRows(app.db, app.cursors, { skip: offset, limit }, viewerId, filter)
    return { articles: page.rows.map((row) => articleOfList(request, row)), articlesCount: page.total }
  }
  const userIdOf = async (username: string | undefined): Promise<number | null | undefined> =>
    username === undefined ? undefined : (await findUserByUsername(app.db, username))?.id ?? null

  app.get('/articles', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['Articles'],
      operationId: 'GetArticles',
      summary: 'Get recent articles globally',
      description: 'Newest first, filtered by `tag`, `author` (a username), `favorited` (a username); the filters combine. ' +
        'A username nobody has gives an empty list. `limit` is 1 to 100.',
      querystring: ArticlesQuery,
      response: { 200: { ...MultipleArticlesResponse, description: 'A page of articles, without their bodies' } }
    }
  }, async (request) => {
    const { tag, author, favorited, limit, offset } = request.query
    const [authorId, likedBy] = await Promise.all([userIdOf(author), userIdOf(favorited)])
    const filter = authorId === null || likedBy === null ? null : { authorId, likedBy, tag }
    return await articlePage(request, filter, limit, offset, request.user?.id)
  })

  app.get('/articles/feed', {
    preHandler: app.authenticate,
    schema: {
      tags: ['Articles'],
      operationId: 'GetArticlesFeed',
      summary: 'Get recent articles from users you follow',
      querystring: FeedQuery,
      response: { 200: { ...MultipleArticlesResponse, description: 'A page of the feed, without the bodies' } }
    }
  }, async (request) => {
    const me = userOf(request).id
    return await articlePage(request, { followedBy: me }, request.query.limit, request.query.offset, me)
  })

  app.get('/articles/:slug', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['Articles'],
      operationId: 'GetArticle',
      summary: 'Get an article',
      params: SlugParams,
      response: { 200: { ...ArticleResponse, description: 'The article' }, 404: notFound }
    }
  }, async (request) => ({ article: articleView(request, await getPostRow(app.db, { slug: request.params.slug }, request.user?.id)) }))

  app.post('/articles', {
    preHandler: app.requirePermission('post:create'),
    schema: {
      tags: ['Articles'],
      operationId: 'CreateArticle',
      summary: 'Create an article',
      description: 'Its slug is made from the title (Inkwell\'s docs/blog.md); `tagList` is normalised (trimmed, lower case, each once).',
      body: NewArticleBody,
      response: { 201: { ...ArticleResponse, description: 'The article' } }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    const { title, description, body, tagList } = request.body.article
    const id = await createPost(app.db, me.id, { title, description, content: body, tags: tagList })
    return reply.code(201).send({ article: articleView(request, await getPostRow(app.db, id, me.id)) })
  })

  app.put('/articles/:slug', {
    preHandler: app.requirePermission('post:edit_own'),
    schema: {
      tags: ['Articles'],
      operationId: 'UpdateArticle',
      summary: 'Update an article',
      description: 'Its author may, or a role with `post:edit_any`. A new title gives a new slug (the old one then finds nothing).',
      params: SlugParams,
      body: UpdateArticleBody,
      response: { 200: { ...ArticleResponse, description: 'The article as it is now' }, 404: notFound }
    }
  }, async (request) => {
    const me = userOf(request)
    const post = await postToChange(app.db, { slug: request.params.slug }, me, 'post:edit_any')
    const { title, description, body, tagList } = request.body.article
    await updatePost(app.db, post.id, { title, description, content: body, tags: tagList })
    return { article: articleView(request, await getPostRow(app.db, post.id, me.id)) }
  })

  app.delete('/articles/:slug', {
    preHandler: app.requirePermission('post:delete_own'),
    schema: {
      tags: ['Articles'],
      operationId: 'DeleteArticle',
      summary: 'Delete an article',
      description: 'Its author may, or a role with `post:delete_any`; its comments and favorites go with it.',
      params: SlugParams,
      response: { 204: Type.Null({ description: 'Deleted' }), 404: notFound }
    }
  }, async (request, reply) => {
    const post = await postToChange(app.db, { slug: request.params.slug }, userOf(request), 'post:delete_any')
    await deletePost(app.db, post.id)
    return reply.code(204).send(null)
  })

  app.get('/articles/:slug/comments', {
    preHandler: app.authenticateOptional,
    schema: {
      tags: ['Comments'],
      operationId: 'GetArticleComments',
      summary: 'Get comments for an article',
      description: `Newest first, at most ${COMMENTS_MAX} (Inkwell's GET /posts/{id}/comments pages through all of them).`,
      params: SlugParams,
      response: { 200: { ...MultipleCommentsResponse, description: 'The comments' }, 404: notFound }
    }
  }, async (request) => {
    const page = await listComments(app.db, app.cursors, { slug: request.params.slug }, { skip: 0, limit: COMMENTS_MAX, order: 'newest' }, request.user?.id)
    return { comments: page.items.map((row) => commentView(request, row)) }
  })

  app.post('/articles/:slug/comments', {
    preHandler: app.requirePermission('comment:create'),
    schema: {
      tags: ['Comments'],
      operationId: 'CreateArticleComment',
      summary: 'Create a comment for an article',
      params: SlugParams,
      body: NewCommentBody,
      response: { 200: { ...CommentResponse, description: 'The comment' }, 404: notFound }
    }
  }, async (request) => {
    const row = await createComment(app.db, { slug: request.params.slug }, userOf(request).id, request.body.comment.body)
    return { comment: commentView(request, row) }
  })

  app.delete('/articles/:slug/comments/:id', {
    preHandler: app.requirePermission('comment:delete_own'),
    schema: {
      tags: ['Comments'],
      operationId: 'DeleteArticleComment',
      summary: 'Delete a comment for an article',
      description: 'Its author may, or a role with `comment:delete_any`. The article first (404), then the comment on it (404), then ownership (403).',
      params: CommentParams,
      response: { 204: Type.Null({ description: 'Deleted' }), 404: conduitError('No article has this slug, or it has no comment with this id') }
    }
  }, async (request, reply) => {
    await deleteComment(app.db, { slug: request.params.slug }, request.params.id, userOf(request))
    return reply.code(204).send(null)
  })

  for (const [method, operationId, summary, like] of [
    ['POST', 'CreateArticleFavorite', 'Favorite an article (idempotent)', likePost],
    ['DELETE', 'DeleteArticleFavorite', 'Unfavorite an article (idempotent)', unlikePost]
  ] as const) {
    app.route({
      method,
      url: '/articles/:slug/favorite',
      preHandler: app.requirePermission('post:like'),
      schema: {
        tags: ['Favorites'],
        operationId,
        summary,
        params: SlugParams,
        response: { 200: { ...ArticleResponse, description: 'The article' }, 404: notFound }
      },
      handler: async (request) => {
        const me = userOf(request).id
        const postId = await like(app.db, me, { slug: request.params.slug })
        return { article: articleView(request, await getPostRow(app.db, postId, me)) }
      }
    })
  }

  app.get('/tags', {
    schema: {
      tags: ['Tags'],
      operationId: 'GetTags',
      summary: 'Get tags',
      description: `The tags in use, most used first, at most ${TAGS_MAX}.`,
      response: { 200: { ...TagsResponse, description: 'The tags' } }
    }
  }, async () => ({ tags: (await listTags(app.db, { skip: 0, limit: TAGS_MAX })).items.map((tag) => tag.name) }))
}

export default articlesRoutes
