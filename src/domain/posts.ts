import { and, desc, eq, inArray, lt, lte, sql, type SQL } from 'drizzle-orm'
import type { BuiltQuery, Database, PostRow, Query, Tables, UserRow } from '../db/index.js'
import { errors } from './errors.js'
import { hasPermission, type Permission } from '../policy.js'
import { pageEnd, pageStart, type CursorPage, type CursorPageRequest, type Cursors } from './pagination.js'
import { assignSlug, provisionalSlug } from './slugs.js'
import { normalizeTag, normalizeTags, setPostTags } from './tags.js'
import { avatarUrl } from './users.js'

const now = () => new Date().toISOString()
const param = sql.placeholder

/** The fields of a page's rows, in the order of the select: the rows come back as arrays (db.preparedRows). */
export type PostTuple = [
  id: number, title: string, content: string, description: string, slug: string, tags: string | null,
  likeCount: number, createdAt: string, updatedAt: string,
  authorId: number, authorUsername: string, authorBio: string, authorAvatar: string | null,
  liked: number | null, following: number | null, total: number | null
]

/**
 * What a list of posts is narrowed to, each optional and combinable: one author's, those carrying a
 * tag, those a user likes, and the feed (those of the authors a user follows).
 */
export interface PostFilter {
  authorId?: number | undefined
  tag?: string | undefined
  likedBy?: number | undefined
  followedBy?: number | undefined
}

const FILTER_KEYS = ['authorId', 'tag', 'likedBy', 'followedBy'] as const
type FilterKey = typeof FILTER_KEYS[number]

/**
 * Each filter as a condition on posts. Each searches an index for the posts it keeps: the tag's posts
 * in post_tags_tag_post_idx, the user's likes in the likes primary key, the followed authors' posts in
 * posts_author_idx. Written as `in (subquery)`, the list of ids, read in order, drives the page on
 * SQLite with no sort; the feed alone sorts (the followed authors' posts, newest first).
 */
function filterConditions (q: Query, { posts, postTags, tags, likes, follows }: Tables): Record<FilterKey, SQL> {
  return {
    authorId: eq(posts.authorId, param('authorId')),
    tag: inArray(posts.id, q.select({ id: postTags.postId }).from(postTags)
      .where(eq(postTags.tagId, q.select({ id: tags.id }).from(tags).where(eq(tags.name, param('tag')))))),
    likedBy: inArray(posts.id, q.select({ id: likes.postId }).from(likes).where(eq(likes.userId, param('likedBy')))),
    followedBy: inArray(posts.authorId, q.select({ id: follows.followeeId }).from(follows).where(eq(follows.followerId, param('followedBy'))))
  }
}

/**
 * The total of a list, one scalar select: carried by every row of a page, and run alone for a page
 * past the end, where no row carries it. Cast to integer: a page's rows come straight from the driver,
 * and PostgreSQL's bigint would arrive as text.
 */
function totalQuery (q: Query, t: Tables, shape: readonly FilterKey[]) {
  const { posts, rowCounts, tags } = t
  // All posts: the counter kept by triggers (counting a million rows takes ~15 ms).
  if (shape.length === 0) return q.select({ n: sql<number>`cast(${rowCounts.n} as integer)` }).from(rowCounts).where(eq(rowCounts.name, 'posts'))
  // A tag's posts: the tag's own counter, also kept by triggers (0 for a tag nobody uses).
  if (shape.length === 1 && shape[0] === 'tag') {
    return q.select({ n: sql<number>`cast(${tags.postCount} as integer)` }).from(tags).where(eq(tags.name, param('tag')))
  }
  // Otherwise counted, through the same indexes as the page (an author's posts: posts_author_idx).
  const conditions = filterConditions(q, t)
  return q.select({ n: sql<number>`cast(count(*) as integer)` }).from(posts).where(and(...shape.map((key) => conditions[key])))
}

/**
 * A post with its author and, for a logged-in viewer (placeholder `viewerId`), whether they like it
 * and follow its author (1 or 0 on both engines), its tags (in the author's order, comma-separated:
 * tags have no commas), and the list's total on every row: one statement, one round trip, for a whole
 * page. The fields are listed in PostTuple's order.
 *
 * `liked` is a correlated scalar subquery: a probe of the likes primary key per row of the page, the
 * same cost whoever the viewer is. EXISTS or a left join let PostgreSQL read all the viewer's likes
 * instead (a hashed subplan, a merge join), which is as fast for a viewer with a few likes and 15 to 26
 * times slower for one with thousands (bench/README.md, "PostgreSQL"). `following` and the tags are
 * probes of the same kind (the follows primary key, post_tags' by post). The total is an uncorrelated
 * subquery, which both engines evaluate once per statement.
 */
function selectPosts (q: Query, t: Tables, withViewer: boolean, total: readonly FilterKey[] | 'none') {
  const { posts, users, likes, postTags, tags, follows } = t
  return q.select({
    id: posts.id,
    title: posts.title,
    content: posts.content,
    description: posts.description,
    slug: posts.slug,
    tags: sql<string | null>`(select string_agg(${tags.name}, ',' order by ${postTags.position}) from ${postTags} inner join ${tags} on ${tags.id} = ${postTags.tagId} where ${postTags.postId} = ${posts.id})`,
    likeCount: posts.likeCount,
    createdAt: posts.createdAt,
    updatedAt: posts.updatedAt,
    authorId: users.id,
    authorUsername: users.username,
    authorBio: users.bio,
    authorAvatar: users.avatar,
    liked: withViewer
      ? sql<number>`coalesce((select 1 from ${likes} where ${likes.userId} = ${param('viewerId')} and ${likes.postId} = ${posts.id}), 0)`
      : sql<null>`null`,
    following: withViewer
      ? sql<number>`coalesce((select 1 from ${follows} where ${follows.followerId} = ${param('viewerId')} and ${follows.followeeId} = ${posts.authorId}), 0)`
      : sql<null>`null`,
    total: total === 'none' ? sql<null>`null` : sql<number>`${totalQuery(q, t, total)}`
  }).from(posts).innerJoin(users, eq(users.id, posts.authorId))
}

type RunRows = (values: Record<string, unknown>) => Promise<PostTuple[]>
interface Runner { anonymous: RunRows, viewer: RunRows }

/**
 * The page of a list of one shape (which filters it has), by offset or by cursor, prepared once per
 * database and shape. Every page reads one row more than it shows (`limit` is the page size + 1):
 * that row says whether another page follows, whatever the total says meanwhile.
 */
function pageQuery (q: Query, t: Tables, shape: readonly FilterKey[], by: 'offset' | 'cursor', withViewer: boolean) {
  const { posts } = t
  const conditions = filterConditions(q, t)
  const filters = shape.map((key) => conditions[key])
  const select = selectPosts(q, t, withViewer, shape)
  if (by === 'cursor') {
    // Keyset: ids below the cursor's, the same cost at any depth.
    return select.where(and(...filters, lt(posts.id, param('before')))).orderBy(desc(posts.id)).limit(param('limit'))
  }
  if (shape.length === 0) {
    // All posts by offset: the id `skip` rows down, found in an index of ids alone (so a deep `skip`
    // steps through that index rather than through whole rows), then the page is a search of the
    // primary key from there down: the same plan as a page by cursor, whatever the parameters' values.
    const firstId = q.select({ id: posts.id }).from(posts).orderBy(desc(posts.id)).limit(1).offset(param('skip'))
    return select.where(lte(posts.id, firstId)).orderBy(desc(posts.id)).limit(param('limit'))
  }
  return select.where(and(...filters)).orderBy(desc(posts.id)).limit(param('limit')).offset(param('skip'))
}

/**
 * The reads of the hot paths, built and prepared once per database instead of on every request
 * (drizzle would otherwise rebuild the SQL text and the engine re-plan it each time). The post rows
 * come from the driver as arrays, mapped once into the API's shape by postView.
 */
function prepareStatements (db: Database, q: Query, t: Tables) {
  const { posts } = t
  const runner = (key: string, build: (withViewer: boolean) => BuiltQuery): Runner => ({
    anonymous: db.preparedRows(`posts_${key}_anonymous`, () => build(false)) as RunRows,
    viewer: db.preparedRows(`posts_${key}_viewer`, () => build(true)) as RunRows
  })
  // A page's runners, made once per list shape (on its first page), not on every request.
  const pages = new Map<string, Runner>()
  return {
    /** The page of a list of this shape; each shape's statements are prepared on first use. */
    page (shape: readonly FilterKey[], by: 'offset' | 'cursor'): Runner {
      const key = `${shape.join('_') || 'all'}_${by}`
      let found = pages.get(key)
      if (found === undefined) {
        found = runner(key, (v) => pageQuery(q, t, shape, by, v))
        pages.set(key, found)
      }
      return found
    },
    one: runner('one', (v) => selectPosts(q, t, v, 'none').where(eq(posts.id, param('id')))),
    bySlug: runner('by_slug', (v) => selectPosts(q, t, v, 'none').where(eq(posts.slug, param('slug')))),
    /** A list's total alone, for a page past its end (no row to carry it); none for a tag nobody uses. */
    total: (shape: readonly FilterKey[]) =>
      db.preparedRows(`posts_total_${shape.join('_') || 'all'}`, () => totalQuery(q, t, shape)) as (values: PostFilter) => Promise<Array<[number]>>,
    find: q.select().from(posts).where(eq(posts.id, param('id'))).prepare('posts_find'),
    findBySlug: q.select().from(posts).where(eq(posts.slug, param('slug'))).prepare('posts_find_by_slug')
  }
}

const statementsFor = (db: Database) => db.prepared('posts', (q, t) => prepareStatements(db, q, t))

export interface PostView {
  id: number
  title: string
  description: string
  slug: string
  content: string
  tags: string[]
  author: { id: number, username: string, avatar_url: string | null, following?: boolean }
  like_count: number
  liked?: boolean
  created_at: string
  updated_at: string
}

/** A page's row as the API shows it. `following` and `liked` are there only for a logged-in viewer. */
export function postView (row: PostTuple): PostView {
  const author: PostView['author'] = { id: row[9], username: row[10], avatar_url: avatarUrl(row[12]) }
  if (row[14] !== null) author.following = row[14] === 1
  const view: PostView = {
    id: row[0],
    title: row[1],
    description: row[3],
    slug: row[4],
    content: row[2],
    tags: row[5] === null ? [] : row[5].split(','),
    author,
    like_count: row[6],
    created_at: row[7],
    updated_at: row[8]
  }
  if (row[13] !== null) view.liked = row[13] === 1
  return view
}

/** What else a post's row tells that the API's view leaves out: the author's bio (for Conduit's profiles). */
export const authorBioOf = (row: PostTuple): string => row[11]

export type PostPageRequest = CursorPageRequest

/** The name a list's cursors are bound to: one list's cursor does not continue another's. */
function listName (filter: PostFilter, shape: readonly FilterKey[]): string {
  if (shape.length === 0) return 'posts'
  if (shape.length === 1 && shape[0] === 'authorId') return `users/${filter.authorId}/posts`
  return `posts?${shape.map((key) => `${key}=${encodeURIComponent(String(filter[key]))}`).join('&')}`
}

/**
 * A page of posts, newest first (all posts, or those the filter keeps), by offset or by cursor, in one
 * statement whatever the page size or depth: the rows carry the total (a page past the end of its
 * list, with no rows, asks for the total apart). Every page answers the cursor of the next.
 */
export async function listPosts (db: Database, cursors: Cursors, request: PostPageRequest, viewerId?: number, filter: PostFilter = {}): Promise<CursorPage<PostView>> {
  const { rows, total, skip, limit, hasMore, next } = await listPostRows(db, cursors, request, viewerId, filter)
  return { items: rows.map(postView), total, skip, limit, has_more: hasMore, next_cursor: next }
}

/** listPosts' page as the rows come from the database, for a view other than Inkwell's own (Conduit's). */
export async function listPostRows (db: Database, cursors: Cursors, request: PostPageRequest, viewerId: number | undefined, filter: PostFilter) {
  const s = statementsFor(db)
  // The tag asked for is compared as tags are stored (400 for one that cannot be a tag).
  const wanted = filter.tag === undefined ? filter : { ...filter, tag: normalizeTag(filter.tag) }
  const shape = FILTER_KEYS.filter((key) => wanted[key] !== undefined)
  const list = listName(wanted, shape)
  const { limit } = request
  const { after: before, skip } = pageStart(cursors, list, request)
  const statements = s.page(shape, before === undefined ? 'offset' : 'cursor')
  const values = { ...wanted, limit: limit + 1, skip, before, viewerId }
  const found = viewerId === undefined ? await statements.anonymous(values) : await statements.viewer(values)
  const total = found[0]?.[15] ?? (await s.total(shape)(wanted))[0]?.[0] ?? 0
  return { ...pageEnd(found, limit, cursors, list, (row) => row[0]), total, skip, limit }
}

/** One post as the viewer sees it; 404 `Post not found` when there is none. */
export async function getPostView (db: Database, id: number, viewerId?: number) {
  return postView(await getPostRow(db, id, viewerId))
}

/** A post named by its id (Inkwell's API) or by its slug (Conduit's). */
export type PostKey = number | { slug: string }

/** One post's row, by id or by slug; 404 `Post not found` when there is none. */
export async function getPostRow (db: Database, key: PostKey, viewerId?: number): Promise<PostTuple> {
  const s = statementsFor(db)
  const [statement, values] = typeof key === 'number' ? [s.one, { id: key }] : [s.bySlug, key]
  const [row] = viewerId === undefined ? await statement.anonymous(values) : await statement.viewer({ ...values, viewerId })
  if (row === undefined) throw errors.postNotFound()
  return row
}

export async function findPost (db: Database, key: PostKey): Promise<PostRow | undefined> {
  const s = statementsFor(db)
  return (await (typeof key === 'number' ? s.find.execute({ id: key }) : s.findBySlug.execute(key)))[0]
}

/** The post, or 404 `Post not found`. */
export async function existingPost (db: Database, key: PostKey): Promise<PostRow> {
  const post = await findPost(db, key)
  if (post === undefined) throw errors.postNotFound()
  return post
}

/**
 * The post the caller means to edit or delete. Existence first (404), then ownership: the author may,
 * and so may a role that grants `override` (`post:edit_any`, `post:delete_any`); anyone else gets 403.
 */
export async function postToChange (db: Database, key: PostKey, caller: Pick<UserRow, 'id' | 'role'>, override: Permission): Promise<PostRow> {
  const post = await existingPost(db, key)
  if (post.authorId !== caller.id && !hasPermission(caller.role, override)) throw errors.notOwner()
  return post
}

export interface NewPost {
  title: string
  content: string
  description?: string | undefined
  tags?: readonly string[] | undefined
}

export type PostChange = Partial<NewPost>

/**
 * Runs a write that gives a post its slug again once if it lost a race for the same free slug (the
 * unique index refused it): the second run sees the winner's slug and takes another.
 */
async function withSlugRetry<T> (db: Database, work: (tx: Database) => Promise<T>): Promise<T> {
  try {
    return await db.transaction(work)
  } catch (err) {
    if (!db.isUniqueViolation(err)) throw err
    return await db.transaction(work)
  }
}

/** Writes a post with its slug (src/domain/slugs.ts) and tags (normalised; 400 when one is not a tag). */
export async function createPost (db: Database, authorId: number, input: NewPost): Promise<number> {
  const tags = normalizeTags(input.tags ?? [])
  const at = now()
  return await withSlugRetry(db, async (tx) => {
    const [row] = await tx.q.insert(tx.t.posts)
      .values({ authorId, title: input.title, content: input.content, description: input.description ?? '', slug: provisionalSlug(), createdAt: at, updatedAt: at })
      .returning({ id: tx.t.posts.id })
    if (row === undefined) throw new Error('insert into posts returned no row')
    await assignSlug(tx, row.id, input.title)
    await setPostTags(tx, row.id, tags)
    return row.id
  })
}

/**
 * Changes what is given; an empty change is a no-op (updated_at moves only when something did). A new
 * title gives the post a new slug, made the same way; the old one then finds nothing. `tags` replaces
 * the post's tags ([] removes them all).
 */
export async function updatePost (db: Database, id: number, change: PostChange): Promise<void> {
  const { tags: rawTags, ...fields } = change
  const tags = rawTags === undefined ? undefined : normalizeTags(rawTags)
  if (Object.values(fields).every((value) => value === undefined) && tags === undefined) return
  await withSlugRetry(db, async (tx) => {
    await tx.q.update(tx.t.posts).set({ ...fields, updatedAt: now() }).where(eq(tx.t.posts.id, id))
    if (fields.title !== undefined) await assignSlug(tx, id, fields.title)
    if (tags !== undefined) await setPostTags(tx, id, tags)
  })
}

export async function deletePost (db: Database, id: number): Promise<void> {
  await db.transaction((tx) => tx.q.delete(tx.t.posts).where(eq(tx.t.posts.id, id)))
}

/**
 * Idempotent: the primary key makes a second like, however concurrent, a no-op. A post deleted
 * between the caller's check and this insert is the 404 it would have been a moment later.
 * Answers the post's id (the caller may have named it by slug).
 */
export async function likePost (db: Database, userId: number, key: PostKey): Promise<number> {
  const { id: postId } = await existingPost(db, key)
  try {
    await db.transaction((tx) => tx.q.insert(tx.t.likes).values({ userId, postId, createdAt: now() }).onConflictDoNothing())
  } catch (err) {
    if (db.isForeignKeyViolation(err)) throw errors.postNotFound()
    throw err
  }
  return postId
}

/** Idempotent; answers the post's id, as likePost does. */
export async function unlikePost (db: Database, userId: number, key: PostKey): Promise<number> {
  const { id: postId } = await existingPost(db, key)
  const { likes } = db.t
  await db.transaction((tx) => tx.q.delete(likes).where(and(eq(likes.userId, userId), eq(likes.postId, postId))))
  return postId
}
