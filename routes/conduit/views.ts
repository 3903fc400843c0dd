import type { FastifyRequest } from 'fastify'
import type { UserRow } from '../../src/db/index.js'
import type { CommentRow } from '../../src/domain/comments.js'
import { authorBioOf, postView, type PostTuple, type PostView } from '../../src/domain/posts.js'
import { avatarUrl } from '../../src/domain/users.js'

/** Conduit's `image`: a full URL (front-ends put it in an <img> on their own origin), or null. */
export function imageOf (request: FastifyRequest, path: string | null): string | null {
  return path === null ? null : `${request.protocol}://${request.host}${path}`
}

export function userView (request: FastifyRequest, user: Pick<UserRow, 'email' | 'username' | 'bio' | 'avatar'>, token: string) {
  return { email: user.email, token, username: user.username, bio: user.bio, image: imageOf(request, avatarUrl(user.avatar)) }
}

export function profileView (request: FastifyRequest, user: Pick<UserRow, 'username' | 'bio' | 'avatar'>, following: boolean) {
  return { username: user.username, bio: user.bio, image: imageOf(request, avatarUrl(user.avatar)), following }
}

/** An article's fields but its body, from a post's row and Inkwell's own view of it. */
function articleFields (request: FastifyRequest, row: PostTuple, post: PostView) {
  return {
    slug: post.slug,
    title: post.title,
    description: post.description,
    tagList: post.tags,
    createdAt: post.created_at,
    updatedAt: post.updated_at,
    favorited: post.liked ?? false,
    favoritesCount: post.like_count,
    author: {
      username: post.author.username,
      bio: authorBioOf(row),
      image: imageOf(request, post.author.avatar_url),
      following: post.author.following ?? false
    }
  }
}

/** An article of a list (no body, as the specification has it since 2024-08-16). */
export const articleOfList = (request: FastifyRequest, row: PostTuple) => articleFields(request, row, postView(row))

export function articleView (request: FastifyRequest, row: PostTuple) {
  const post = postView(row)
  return { ...articleFields(request, row, post), body: post.content }
}

export function commentView (request: FastifyRequest, row: CommentRow) {
  return {
    id: row.id,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    body: row.body,
    author: { username: row.authorUsername, bio: row.authorBio, image: imageOf(request, avatarUrl(row.authorAvatar)), following: row.following === 1 }
  }
}
