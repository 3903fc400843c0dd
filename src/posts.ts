import { httpErrors } from '@fastify/sensible'
import { and, desc, eq, sql } from 'drizzle-orm'
import type { Db } from './db/client.js'
import { likes, posts, users, type PostRow } from './db/schema.js'
import { toPage, type PageRequest } from './pagination.js'
import { avatarUrl } from './users.js'

const now = () => new Date().toISOString()

/** A post with its author and, for a logged-in viewer, whether they like it: one query for a whole page. */
function selectPosts (db: Db, viewerId: number | undefined) {
  return db.select({
    id: posts.id,
    title: posts.title,
    content: posts.content,
    likeCount: posts.likeCount,
    createdAt: posts.createdAt,
    updatedAt: posts.updatedAt,
    authorId: users.id,
    authorUsername: users.username,
    authorAvatar: users.avatar,
    liked: viewerId === undefined
      ? sql<null>`null`
      : sql<number>`exists (select 1 from ${likes} where ${likes.postId} = ${posts.id} and ${likes.userId} = ${viewerId})`
  }).from(posts).innerJoin(users, eq(users.id, posts.authorId))
}

type PostJoinRow = Awaited<ReturnType<ReturnType<typeof selectPosts>['all']>>[number]

export function postView (row: PostJoinRow) {
  return {
    id: row.id,
    title: row.title,
    content: row.content,
    author: { id: row.authorId, username: row.authorUsername, avatar_url: avatarUrl(row.authorAvatar) },
    like_count: row.likeCount,
    // Present only for a logged-in viewer.
    ...(row.liked !== null && { liked: row.liked === 1 }),
    created_at: row.createdAt,
    updated_at: row.updatedAt
  }
}

export function listPosts (db: Db, page: PageRequest, viewerId?: number, authorId?: number) {
  const where = authorId === undefined ? undefined : eq(posts.authorId, authorId)
  const rows = selectPosts(db, viewerId).where(where).orderBy(desc(posts.id)).limit(page.limit).offset(page.skip).all()
  const total = db.select({ n: sql<number>`count(*)` }).from(posts).where(where).get()?.n ?? 0
  return toPage(rows.map(postView), total, page)
}

/** One post as the viewer sees it; 404 `Post not found` when there is none. */
export function getPostView (db: Db, id: number, viewerId?: number) {
  const row = selectPosts(db, viewerId).where(eq(posts.id, id)).get()
  if (row === undefined) throw httpErrors.notFound('Post not found')
  return postView(row)
}

export function findPost (db: Db, id: number): PostRow | undefined {
  return db.select().from(posts).where(eq(posts.id, id)).get()
}

export function createPost (db: Db, authorId: number, input: { title: string, content: string }): number {
  const at = now()
  return db.insert(posts).values({ authorId, ...input, createdAt: at, updatedAt: at }).returning({ id: posts.id }).get().id
}

export function updatePost (db: Db, id: number, change: { title?: string, content?: string }): void {
  db.update(posts).set({ ...change, updatedAt: now() }).where(eq(posts.id, id)).run()
}

export function deletePost (db: Db, id: number): void {
  db.delete(posts).where(eq(posts.id, id)).run()
}

/** Idempotent: the primary key makes a second like, however concurrent, a no-op. */
export function likePost (db: Db, userId: number, postId: number): void {
  db.insert(likes).values({ userId, postId, createdAt: now() }).onConflictDoNothing().run()
}

export function unlikePost (db: Db, userId: number, postId: number): void {
  db.delete(likes).where(and(eq(likes.userId, userId), eq(likes.postId, postId))).run()
}
