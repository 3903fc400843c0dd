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

/** Conduit's profile (also an article's or a comment's `author`), from an avatar's public path. */
function profile (request: FastifyRequest, username: string, bio: string, avatarPath: string | null, following: boolean) {
  return { username, bio, image: imageOf(request, avatarPath), following }
}

export function profileView (request: FastifyRequest, user: Pick<UserRow, 'username' | 'bio' | 'avatar'>, following: boolean) {
  return profile(request, user.username, user.bio, avatarUrl(user.avatar), following)
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
    author: profile(request, post.author.username, authorBioOf(row), post.author.avatar_url, post.author.following ?? false)
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
    author: profileView(request, { username: row.authorUsername, bio: row.authorBio, avatar: row.authorAvatar }, row.following === 1)
  }
}
