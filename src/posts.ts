import { httpErrors } from '@fastify/sensible'
import { and, count, desc, eq, inArray, sql } from 'drizzle-orm'
import type { Db } from './db/client.js'
import { likes, posts, users, type PostRow } from './db/schema.js'
import { toPage, type PageRequest } from './pagination.js'
import { avatarUrl } from './users.js'

const now = () => new Date().toISOString()
const param = sql.placeholder

/**
 * A post with its author and, for a logged-in viewer (placeholder `viewerId`), whether they like it:
 * one query for a whole page, with `like_count` kept on the row by triggers.
 */
function selectPosts (db: Db, withViewer: boolean) {
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
    liked: withViewer
      ? sql<number>`exists (select 1 from ${likes} where ${likes.postId} = ${posts.id} and ${likes.userId} = ${param('viewerId')})`
      : sql<null>`null`
  }).from(posts).innerJoin(users, eq(users.id, posts.authorId))
}

/**
 * The queries of the hot paths, built and compiled once per database instead of on every request
 * (drizzle would otherwise rebuild the SQL text and SQLite re-prepare it each time).
 */
function prepareStatements (db: Db) {
  // The page's ids first, through the small posts_id_idx: a deep `skip` steps through that index
  // rather than through whole rows, and only the rows of the page are joined with their authors.
  const pageIds = db.select({ id: posts.id }).from(posts)
    .orderBy(desc(posts.id)).limit(param('limit')).offset(param('skip'))
  const page = (withViewer: boolean) => selectPosts(db, withViewer)
    .where(inArray(posts.id, pageIds)).orderBy(desc(posts.id)).prepare()
  // An author's posts come newest first straight from posts_author_idx (author_id, id).
  const authorPage = (withViewer: boolean) => selectPosts(db, withViewer)
    .where(eq(posts.authorId, param('authorId'))).orderBy(desc(posts.id))
    .limit(param('limit')).offset(param('skip')).prepare()
  const one = (withViewer: boolean) => selectPosts(db, withViewer).where(eq(posts.id, param('id'))).prepare()

  return {
    page: { anonymous: page(false), viewer: page(true) },
    authorPage: { anonymous: authorPage(false), viewer: authorPage(true) },
    one: { anonymous: one(false), viewer: one(true) },
    // Kept by triggers (drizzle/0003_posts_total_counter.sql): counting a million rows takes ~15 ms.
    total: db.$client.prepare<[], number>('select n from row_counts where name = \'posts\'').pluck(),
    authorTotal: db.select({ n: count() }).from(posts).where(eq(posts.authorId, param('authorId'))).prepare(),
    find: db.select().from(posts).where(eq(posts.id, param('id'))).prepare(),
    insert: db.insert(posts).values({
      authorId: param('authorId'),
      title: param('title'),
      content: param('content'),
      createdAt: param('at'),
      updatedAt: param('at')
    }).returning({ id: posts.id }).prepare(),
    // A field left out of the change is null here and keeps its value.
    update: db.update(posts).set({
      title: sql`coalesce(${param('title')}, ${posts.title})`,
      content: sql`coalesce(${param('content')}, ${posts.content})`,
      updatedAt: sql`${param('at')}`
    }).where(eq(posts.id, param('id'))).prepare(),
    delete: db.delete(posts).where(eq(posts.id, param('id'))).prepare(),
    like: db.insert(likes).values({ userId: param('userId'), postId: param('postId'), createdAt: param('at') })
      .onConflictDoNothing().prepare(),
    unlike: db.delete(likes).where(and(eq(likes.userId, param('userId')), eq(likes.postId, param('postId')))).prepare()
  }
}

type Statements = ReturnType<typeof prepareStatements>
const prepared = new WeakMap<Db, Statements>()

function statementsFor (db: Db): Statements {
  let statements = prepared.get(db)
  if (statements === undefined) {
    statements = prepareStatements(db)
    prepared.set(db, statements)
  }
  return statements
}

type PostJoinRow = ReturnType<Statements['page']['viewer']['all']>[number] | ReturnType<Statements['page']['anonymous']['all']>[number]

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

/** A page of posts, newest first, in two queries whatever the page size: the rows and the total. */
export function listPosts (db: Db, page: PageRequest, viewerId?: number, authorId?: number) {
  const s = statementsFor(db)
  const window = { limit: page.limit, skip: page.skip }
  let rows: PostJoinRow[]
  let total: number
  if (authorId === undefined) {
    rows = viewerId === undefined ? s.page.anonymous.all(window) : s.page.viewer.all({ ...window, viewerId })
    total = s.total.get() ?? 0
  } else {
    rows = viewerId === undefined
      ? s.authorPage.anonymous.all({ ...window, authorId })
      : s.authorPage.viewer.all({ ...window, authorId, viewerId })
    total = s.authorTotal.get({ authorId })?.n ?? 0
  }
  return toPage(rows.map(postView), total, page)
}

/** One post as the viewer sees it; 404 `Post not found` when there is none. */
export function getPostView (db: Db, id: number, viewerId?: number) {
  const s = statementsFor(db)
  const row = viewerId === undefined ? s.one.anonymous.get({ id }) : s.one.viewer.get({ id, viewerId })
  if (row === undefined) throw httpErrors.notFound('Post not found')
  return postView(row)
}

export function findPost (db: Db, id: number): PostRow | undefined {
  return statementsFor(db).find.get({ id })
}

export function createPost (db: Db, authorId: number, input: { title: string, content: string }): number {
  const row = statementsFor(db).insert.get({ authorId, title: input.title, content: input.content, at: now() })
  if (row === undefined) throw new Error('insert into posts returned no row')
  return row.id
}

/** An empty change is a no-op: updated_at moves only when something did. */
export function updatePost (db: Db, id: number, change: { title?: string, content?: string }): void {
  if (change.title === undefined && change.content === undefined) return
  statementsFor(db).update.run({ id, title: change.title ?? null, content: change.content ?? null, at: now() })
}

export function deletePost (db: Db, id: number): void {
  statementsFor(db).delete.run({ id })
}

/** Idempotent: the primary key makes a second like, however concurrent, a no-op. */
export function likePost (db: Db, userId: number, postId: number): void {
  statementsFor(db).like.run({ userId, postId, at: now() })
}

export function unlikePost (db: Db, userId: number, postId: number): void {
  statementsFor(db).unlike.run({ userId, postId })
}
