import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm'
import type { Database, UserRow } from '../db/index.js'
import { errors } from './errors.js'
import { pageEnd, pageStart, type CursorPage, type CursorPageRequest, type Cursors } from './pagination.js'
import { hasPermission } from '../policy.js'
import { existingPost, type PostKey } from './posts.js'
import { avatarUrl } from './users.js'

const now = () => new Date().toISOString()

export type CommentOrder = 'newest' | 'oldest'

export interface CommentPageRequest extends CursorPageRequest {
  order: CommentOrder
}

/** A comment as read: with its author, whose bio Conduit's profiles show, and whether the viewer follows them. */
export interface CommentRow {
  id: number
  postId: number
  body: string
  createdAt: string
  updatedAt: string
  authorId: number
  authorUsername: string
  authorBio: string
  authorAvatar: string | null
  /** 1 or 0 for a logged-in viewer, null otherwise. */
  following: number | null
}

export interface CommentView {
  id: number
  post_id: number
  body: string
  author: { id: number, username: string, avatar_url: string | null, following?: boolean }
  created_at: string
  updated_at: string
}

export function commentView (row: CommentRow): CommentView {
  const author: CommentView['author'] = { id: row.authorId, username: row.authorUsername, avatar_url: avatarUrl(row.authorAvatar) }
  if (row.following !== null) author.following = row.following === 1
  return { id: row.id, post_id: row.postId, body: row.body, author, created_at: row.createdAt, updated_at: row.updatedAt }
}

function selectComments (db: Database, viewerId: number | undefined) {
  const { comments, users, follows } = db.t
  return db.q.select({
    id: comments.id,
    postId: comments.postId,
    body: comments.body,
    createdAt: comments.createdAt,
    updatedAt: comments.updatedAt,
    authorId: users.id,
    authorUsername: users.username,
    authorBio: users.bio,
    authorAvatar: users.avatar,
    following: viewerId === undefined
      ? sql<null>`null`
      : sql<number>`coalesce((select 1 from ${follows} where ${follows.followerId} = ${viewerId} and ${follows.followeeId} = ${comments.authorId}), 0)`
  }).from(comments).innerJoin(users, eq(users.id, comments.authorId))
}

/**
 * A page of a post's comments, newest or oldest first, by offset or by cursor (comments_post_idx
 * either way): 404 `Post not found` when the post is not there. A cursor continues its own post's
 * list in its own order only.
 */
export async function listComments (db: Database, cursors: Cursors, key: PostKey, request: CommentPageRequest, viewerId?: number): Promise<CursorPage<CommentRow>> {
  const post = await existingPost(db, key)
  const { comments } = db.t
  const list = `posts/${post.id}/comments?order=${request.order}`
  const { after, skip } = pageStart(cursors, list, request)
  const newest = request.order === 'newest'
  const onPost = eq(comments.postId, post.id)
  const [found, [counted]] = await Promise.all([
    selectComments(db, viewerId)
      .where(after === undefined ? onPost : and(onPost, newest ? lt(comments.id, after) : gt(comments.id, after)))
      .orderBy(newest ? desc(comments.id) : asc(comments.id))
      .limit(request.limit + 1).offset(skip),
    db.q.select({ n: sql<number>`cast(count(*) as integer)` }).from(comments).where(onPost)
  ])
  const { rows, hasMore, next } = pageEnd(found, request.limit, cursors, list, (row) => row.id)
  return { items: rows, total: counted?.n ?? 0, skip, limit: request.limit, has_more: hasMore, next_cursor: next }
}

async function commentRow (db: Database, id: number, viewerId: number | undefined): Promise<CommentRow> {
  const [row] = await selectComments(db, viewerId).where(eq(db.t.comments.id, id))
  if (row === undefined) throw errors.commentNotFound()
  return row
}

/** Writes the caller's comment on a post (404 `Post not found`, also when the post goes meanwhile). */
export async function createComment (db: Database, key: PostKey, authorId: number, body: string): Promise<CommentRow> {
  const post = await existingPost(db, key)
  const at = now()
  let id: number
  try {
    const [row] = await db.transaction((tx) => tx.q.insert(tx.t.comments)
      .values({ postId: post.id, authorId, body, createdAt: at, updatedAt: at }).returning({ id: tx.t.comments.id }))
    if (row === undefined) throw new Error('insert into comments returned no row')
    id = row.id
  } catch (err) {
    if (db.isForeignKeyViolation(err)) throw errors.postNotFound()
    throw err
  }
  return await commentRow(db, id, authorId)
}

/**
 * Deletes a comment of a post. The post first (404 `Post not found`), then the comment on that post
 * (404 `Comment not found`, also for a comment of another post), then ownership: its author may, and
 * so may a role that grants `comment:delete_any` (moderators, admins); anyone else gets 403.
 */
export async function deleteComment (db: Database, key: PostKey, commentId: number, caller: Pick<UserRow, 'id' | 'role'>): Promise<void> {
  const post = await existingPost(db, key)
  const { comments } = db.t
  const [comment] = await db.q.select({ authorId: comments.authorId }).from(comments)
    .where(and(eq(comments.id, commentId), eq(comments.postId, post.id)))
  if (comment === undefined) throw errors.commentNotFound()
  if (comment.authorId !== caller.id && !hasPermission(caller.role, 'comment:delete_any')) throw errors.notCommentOwner()
  await db.transaction((tx) => tx.q.delete(comments).where(eq(comments.id, commentId)))
}
