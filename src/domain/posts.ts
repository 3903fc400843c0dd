import { and, desc, eq, lt, lte, sql } from 'drizzle-orm'
import type { Database, PostRow, Query, Tables, UserRow } from '../db/index.js'
import { errors } from './errors.js'
import { hasPermission, type Permission } from '../policy.js'
import type { CursorPage, Cursors, PageRequest } from './pagination.js'
import { avatarUrl } from './users.js'

const now = () => new Date().toISOString()
const param = sql.placeholder

/** The fields of a page's rows, in the order of the select: the rows come back as arrays (db.preparedRows). */
type PostTuple = [
  id: number, title: string, content: string, likeCount: number, createdAt: string, updatedAt: string,
  authorId: number, authorUsername: string, authorAvatar: string | null, liked: number | null, total: number | null
]

/**
 * The totals of the two lists, each one scalar select: carried by every row of a page, and run alone
 * for a page past the end, where no row carries it. Cast to integer: a page's rows come straight from
 * the driver, and PostgreSQL's bigint would arrive as text.
 */
function totalQueries (q: Query, { posts, rowCounts }: Tables) {
  return {
    // The counter kept by triggers: counting a million rows takes ~15 ms.
    all: q.select({ n: sql<number>`cast(${rowCounts.n} as integer)` }).from(rowCounts).where(eq(rowCounts.name, 'posts')),
    // An author's posts, counted through posts_author_idx.
    author: q.select({ n: sql<number>`cast(count(*) as integer)` }).from(posts).where(eq(posts.authorId, param('authorId')))
  }
}

/** Which total a page's rows carry: of all posts, of one author's, or none (one post). */
type Total = keyof ReturnType<typeof totalQueries> | 'none'

/**
 * A post with its author and, for a logged-in viewer (placeholder `viewerId`), whether they like it
 * (1 or 0 on both engines), and the total of the list on every row: one statement, one round trip, for
 * a whole page. The fields are listed in PostTuple's order.
 *
 * `liked` is a correlated scalar subquery: a probe of the likes primary key per row of the page, the
 * same cost whoever the viewer is. EXISTS or a left join let PostgreSQL read all the viewer's likes
 * instead (a hashed subplan, a merge join), which is as fast for a viewer with a few likes and 15 to 26
 * times slower for one with thousands (bench/README.md, "PostgreSQL"). The total (totalQueries) is an
 * uncorrelated subquery, which both engines evaluate once per statement.
 */
function selectPosts (q: Query, t: Tables, withViewer: boolean, total: Total) {
  const { posts, users, likes } = t
  return q.select({
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
      ? sql<number>`coalesce((select 1 from ${likes} where ${likes.userId} = ${param('viewerId')} and ${likes.postId} = ${posts.id}), 0)`
      : sql<null>`null`,
    total: total === 'none' ? sql<null>`null` : sql<number>`${totalQueries(q, t)[total]}`
  }).from(posts).innerJoin(users, eq(users.id, posts.authorId))
}

/** The queries of pages of posts, each anonymous and for a viewer (`liked`). */
function pageQueries (q: Query, t: Tables) {
  const { posts } = t
  const both = <T>(build: (withViewer: boolean) => T) => ({ anonymous: build(false), viewer: build(true) })
  // Every page reads one row more than it shows (`limit` is the page size + 1): that row says
  // whether another page follows, whatever the total says meanwhile.
  // By offset: the id `skip` rows down, found in an index of ids alone (so a deep `skip` steps
  // through that index rather than through whole rows), then the page is a search of the primary key
  // from there down: the same plan as a page by cursor, whatever the parameters' values.
  const firstId = q.select({ id: posts.id }).from(posts).orderBy(desc(posts.id)).limit(1).offset(param('skip'))
  return {
    page: both((v) => selectPosts(q, t, v, 'all').where(lte(posts.id, firstId)).orderBy(desc(posts.id)).limit(param('limit'))),
    // By cursor (keyset): a search of the primary key for ids below the cursor's, the same cost at any depth.
    pageAfter: both((v) => selectPosts(q, t, v, 'all').where(lt(posts.id, param('before'))).orderBy(desc(posts.id)).limit(param('limit'))),
    // An author's posts come newest first straight from posts_author_idx (author_id, id).
    authorPage: both((v) => selectPosts(q, t, v, 'author').where(eq(posts.authorId, param('authorId'))).orderBy(desc(posts.id))
      .limit(param('limit')).offset(param('skip'))),
    authorPageAfter: both((v) => selectPosts(q, t, v, 'author').where(and(eq(posts.authorId, param('authorId')), lt(posts.id, param('before'))))
      .orderBy(desc(posts.id)).limit(param('limit'))),
    one: both((v) => selectPosts(q, t, v, 'none').where(eq(posts.id, param('id'))))
  }
}

type PageQueries = ReturnType<typeof pageQueries>
type RunRows = (values: Record<string, unknown>) => Promise<PostTuple[]>
type Runners = { [K in keyof PageQueries]: { anonymous: RunRows, viewer: RunRows } }

/**
 * The reads of the hot paths, built and prepared once per database instead of on every request
 * (drizzle would otherwise rebuild the SQL text and the engine re-plan it each time). The post rows
 * come from the driver as arrays, mapped once into the API's shape by postView.
 */
function prepareStatements (db: Database, q: Query, t: Tables) {
  const { posts } = t
  const queries = pageQueries(q, t)
  const totals = totalQueries(q, t)
  const runners = Object.fromEntries(Object.entries(queries).map(([name, { anonymous, viewer }]) => [name, {
    anonymous: db.preparedRows(`posts_${name}_anonymous`, () => anonymous) as RunRows,
    viewer: db.preparedRows(`posts_${name}_viewer`, () => viewer) as RunRows
  }])) as Runners
  return {
    ...runners,
    // The totals alone, for a page past the end of its list (no row to carry the total).
    total: totals.all.prepare('posts_total'),
    authorTotal: totals.author.prepare('posts_author_total'),
    find: q.select().from(posts).where(eq(posts.id, param('id'))).prepare('posts_find')
  }
}

const statementsFor = (db: Database) => db.prepared('posts', (q, t) => prepareStatements(db, q, t))

export interface PostView {
  id: number
  title: string
  content: string
  author: { id: number, username: string, avatar_url: string | null }
  like_count: number
  liked?: boolean
  created_at: string
  updated_at: string
}

export function postView (row: PostTuple): PostView {
  const view: PostView = {
    id: row[0],
    title: row[1],
    content: row[2],
    author: { id: row[6], username: row[7], avatar_url: avatarUrl(row[8]) },
    like_count: row[3],
    created_at: row[4],
    updated_at: row[5]
  }
  // Present only for a logged-in viewer.
  if (row[9] !== null) view.liked = row[9] === 1
  return view
}

export interface PostPageRequest extends PageRequest {
  /** The `next_cursor` of the previous page of the same list. */
  cursor?: string | undefined
}

/**
 * A page of posts, newest first (all posts, or one author's), by offset or by cursor, in one statement
 * whatever the page size or depth: the rows carry the total (a page past the end of its list, with no
 * rows, asks for the total apart). Every page answers the cursor of the next.
 */
export async function listPosts (db: Database, cursors: Cursors, request: PostPageRequest, viewerId?: number, authorId?: number): Promise<CursorPage<PostView>> {
  const s = statementsFor(db)
  // A cursor belongs to the list that issued it: one of /posts does not continue an author's list.
  const list = authorId === undefined ? 'posts' : `users/${authorId}/posts`
  const { limit, cursor } = request
  if (cursor !== undefined && request.skip > 0) {
    throw errors.cursorWithSkip()
  }
  const before = cursor === undefined ? undefined : cursors.read(list, cursor)
  const skip = before === undefined ? request.skip : 0
  const statements = authorId === undefined
    ? (before === undefined ? s.page : s.pageAfter)
    : (before === undefined ? s.authorPage : s.authorPageAfter)
  const values = { limit: limit + 1, skip, before, authorId, viewerId }
  const found = viewerId === undefined ? await statements.anonymous(values) : await statements.viewer(values)
  const total = found[0]?.[10] ??
    (await (authorId === undefined ? s.total.execute() : s.authorTotal.execute({ authorId })))[0]?.n ?? 0
  const hasMore = found.length > limit
  const items = (hasMore ? found.slice(0, limit) : found).map(postView)
  const last = items[items.length - 1]
  return {
    items,
    total,
    skip,
    limit,
    has_more: hasMore,
    next_cursor: hasMore && last !== undefined ? cursors.issue(list, last.id) : null
  }
}

/** One post as the viewer sees it; 404 `Post not found` when there is none. */
export async function getPostView (db: Database, id: number, viewerId?: number) {
  const s = statementsFor(db)
  const [row] = viewerId === undefined ? await s.one.anonymous({ id }) : await s.one.viewer({ id, viewerId })
  if (row === undefined) throw errors.postNotFound()
  return postView(row)
}

export async function findPost (db: Database, id: number): Promise<PostRow | undefined> {
  return (await statementsFor(db).find.execute({ id }))[0]
}

/**
 * The post the caller means to edit or delete. Existence first (404), then ownership: the author may,
 * and so may a role that grants `override` (`post:edit_any`, `post:delete_any`); anyone else gets 403.
 */
export async function postToChange (db: Database, id: number, caller: Pick<UserRow, 'id' | 'role'>, override: Permission): Promise<PostRow> {
  const post = await findPost(db, id)
  if (post === undefined) throw errors.postNotFound()
  if (post.authorId !== caller.id && !hasPermission(caller.role, override)) throw errors.notOwner()
  return post
}

async function assertPostExists (db: Database, id: number): Promise<void> {
  if (await findPost(db, id) === undefined) throw errors.postNotFound()
}

export async function createPost (db: Database, authorId: number, input: { title: string, content: string }): Promise<number> {
  const at = now()
  const [row] = await db.transaction((tx) => tx.q.insert(tx.t.posts)
    .values({ authorId, title: input.title, content: input.content, createdAt: at, updatedAt: at })
    .returning({ id: tx.t.posts.id }))
  if (row === undefined) throw new Error('insert into posts returned no row')
  return row.id
}

/** An empty change is a no-op: updated_at moves only when something did. */
export async function updatePost (db: Database, id: number, change: { title?: string, content?: string }): Promise<void> {
  if (change.title === undefined && change.content === undefined) return
  await db.transaction((tx) => tx.q.update(tx.t.posts)
    .set({ ...change, updatedAt: now() }).where(eq(tx.t.posts.id, id)))
}

export async function deletePost (db: Database, id: number): Promise<void> {
  await db.transaction((tx) => tx.q.delete(tx.t.posts).where(eq(tx.t.posts.id, id)))
}

/**
 * Idempotent: the primary key makes a second like, however concurrent, a no-op. A post deleted
 * between the caller's check and this insert is the 404 it would have been a moment later.
 */
export async function likePost (db: Database, userId: number, postId: number): Promise<void> {
  await assertPostExists(db, postId)
  try {
    await db.transaction((tx) => tx.q.insert(tx.t.likes).values({ userId, postId, createdAt: now() }).onConflictDoNothing())
  } catch (err) {
    if (db.isForeignKeyViolation(err)) throw errors.postNotFound()
    throw err
  }
}

export async function unlikePost (db: Database, userId: number, postId: number): Promise<void> {
  await assertPostExists(db, postId)
  const { likes } = db.t
  await db.transaction((tx) => tx.q.delete(likes).where(and(eq(likes.userId, userId), eq(likes.postId, postId))))
}
