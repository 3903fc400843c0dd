// The hot paths, checked for shape rather than speed (the benchmark, `npm run bench`, measures):
// which statements a request runs and how many, how the engine plans each one, and that the JWT
// verification cache never stands in for the per-request user and session check. On SQLite the plan
// is EXPLAIN QUERY PLAN: an index SEARCH, never a full SCAN of a growing table. On PostgreSQL it is
// EXPLAIN (FORMAT JSON) of the statement's generic plan (test/support/query-plans.ts): every read of a
// growing table goes through an index with an index condition, never a Seq Scan or a whole index.
import { sql, type SQL } from 'drizzle-orm'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { createPost, likePost } from '../../src/domain/posts.js'
import { build, login, loginAs, PASSWORD, type TestUser } from '../helper.js'
import {
  describeNode, describePlan, planSteps, postgresIndexes, postgresPlanOf, searchesIndex, sqlitePlanOf as planOf, type IndexInfo, type PlanStep
} from '../support/query-plans.js'

/** Records the SQL of every statement the database runs while `fn` runs, prepared ones included. */
async function statementsRunBy (app: App, fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = []
  app.db.statements.listener = (sql) => seen.push(sql)
  try {
    await fn()
  } finally {
    app.db.statements.listener = undefined
  }
  return seen
}

// The tables that grow with use. A step that reads one of them whole is a bug on a hot path.
const GROWING = /^SCAN (posts|likes|users|sessions|refresh_tokens|post_tags|comments|follows)\b/
// The one scan allowed: the first id of an offset page, found by walking the small posts_id_idx newest
// first, stopped by LIMIT/OFFSET, never read to the end.
const BOUNDED_ID_SCAN = 'SCAN posts USING COVERING INDEX posts_id_idx'
// The one sort allowed: a post's tags (at most 10) put in their author's order as they are joined.
const TAGS_IN_ORDER = 'USE TEMP B-TREE FOR string_agg(ORDER BY)'
// A statement parameter: `?` on SQLite, `$1`, `$2`... on PostgreSQL.
const P = String.raw`(?:\?|\$\d+)`
const BOUNDED_BY_LIMIT = new RegExp(String.raw`order by "posts"\."id" desc limit ${P} offset ${P}`)

/**
 * What each engine's plan must contain: SQLite plan steps, PostgreSQL nodes as describeNode names them.
 * `feed` marks the one statement allowed to sort more than a page: the feed, which orders the posts
 * of every author the viewer follows (each author's found through posts_author_idx). PostgreSQL plans
 * that too with a real data set's statistics (the bench's), but on this world's few unanalysed rows it
 * may walk the posts newest first and keep the followed authors' (posts_pkey, backwards, stopped by
 * LIMIT): allowed here, for the feed only.
 */
interface Expected { sqlite: readonly string[], postgres: readonly string[], feed?: true }

async function assertIndexed (t: Test, app: App, sql: string, expected: Expected, what: string): Promise<void> {
  if (app.db.engine === 'postgres') await assertIndexedPostgres(t, app, sql, expected.postgres, what, expected.feed === true)
  else assertIndexedSqlite(t, app, sql, expected.sqlite, what, expected.feed === true)
}

function assertIndexedSqlite (t: Test, app: App, sql: string, expected: readonly string[], what: string, feed = false): void {
  const plan = planOf(app, sql)
  const scans = plan.filter((step) => GROWING.test(step) && step !== BOUNDED_ID_SCAN)
  t.same(scans, [], `${what}: no full scan (plan: ${plan.join(' | ')})`)
  const allowed = feed ? [TAGS_IN_ORDER, 'USE TEMP B-TREE FOR ORDER BY'] : [TAGS_IN_ORDER]
  t.notOk(plan.some((step) => step.includes('TEMP B-TREE') && !allowed.includes(step)), `${what}: no sort of an intermediate result`)
  for (const step of expected) t.ok(plan.includes(step), `${what}: ${step}`)
  if (plan.includes(BOUNDED_ID_SCAN)) t.match(sql, BOUNDED_BY_LIMIT, `${what}: the id scan is bounded by LIMIT`)
}

const GROWING_TABLES = new Set(['posts', 'likes', 'users', 'sessions', 'refresh_tokens', 'post_tags', 'comments', 'follows'])
// PostgreSQL's bounded id scan: the page's ids, newest first, straight from the primary key, with a
// Limit directly above it (which stops it after skip + limit entries; the SQL is checked to match).
const PG_BOUNDED_ID_SCAN = 'Index Only Scan Backward using posts_pkey on posts'
const isBoundedIdScan = ({ node, ancestors }: PlanStep) =>
  describeNode(node) === PG_BOUNDED_ID_SCAN && node['Index Cond'] === undefined && ancestors[0]?.['Node Type'] === 'Limit'

/**
 * A read of a growing table that is not an index search: a Seq Scan, or an index walked whole (no
 * index condition, or one on a later key only), which is what a Seq Scan turns into when it is
 * disabled and the table has some other index. A Bitmap Heap Scan reads only what its Bitmap Index
 * Scans found, and those are checked themselves.
 */
function isFullScan (step: PlanStep, indexes: Map<string, IndexInfo>): boolean {
  const { node } = step
  const table = node['Relation Name'] ?? indexes.get(node['Index Name'] ?? '')?.table
  if (table === undefined || !GROWING_TABLES.has(table)) return false
  switch (node['Node Type']) {
    case 'Index Scan':
    case 'Index Only Scan':
    case 'Bitmap Index Scan':
      return !searchesIndex(node, indexes) && !isBoundedIdScan(step)
    case 'Bitmap Heap Scan':
    case 'ModifyTable':
      return false
    default: // Seq Scan, Tid Range Scan, Sample Scan...
      return true
  }
}

async function assertIndexedPostgres (t: Test, app: App, sql: string, expected: readonly string[], what: string, feed = false): Promise<void> {
  const plan = await postgresPlanOf(app, sql)
  const indexes = await postgresIndexes(app)
  const steps = planSteps(plan)
  const shown = describePlan(plan)
  const feedWalk = (s: PlanStep) => feed && describeNode(s.node) === 'Index Scan Backward using posts_pkey on posts'
  t.same(steps.filter((s) => isFullScan(s, indexes) && !feedWalk(s)).map((s) => describeNode(s.node)), [], `${what}: no full scan (plan: ${shown})`)
  // A sort is allowed only above a Limit: then it orders the page's rows (at most `limit` of them),
  // never a table or an author's posts.
  const unbounded = steps.filter(({ node }) => !feed && /Sort$/.test(node['Node Type']) &&
    !planSteps(node).some((below) => below.node['Node Type'] === 'Limit'))
  t.same(unbounded.map((s) => describeNode(s.node)), [], `${what}: no sort of an intermediate result but the page`)
  const nodes = steps.map((s) => describeNode(s.node))
  for (const node of expected) t.ok(nodes.includes(node), `${what}: ${node}`)
  if (steps.some(isBoundedIdScan)) t.match(sql, BOUNDED_BY_LIMIT, `${what}: the id scan is bounded by LIMIT`)
}

const only = (statements: string[], pattern: RegExp, what: string): string => {
  const matching = [...new Set(statements.filter((s) => pattern.test(s)))]
  if (matching.length !== 1) throw new Error(`expected one statement for ${what}, got ${matching.length}: ${statements.join('\n')}`)
  return matching[0] as string
}

const CURRENT_USER = /from "sessions" inner join "users"/
const POST_PAGE = /from "posts" inner join "users" .* where "posts"\."id" <= \(select "id" from "posts" order by "posts"\."id" desc limit/
const AUTHOR_PAGE = new RegExp(String.raw`from "posts" inner join "users" .* where "posts"\."author_id" = ${P}`)
const POST_TOTAL = /^select cast\("n" as integer\) from "row_counts"/
const AUTHOR_TOTAL = new RegExp(String.raw`count\(\*\).* from "posts" where "posts"\."author_id" = ${P}$`)

interface World { app: App, alice: TestUser, bob: TestUser }

/** Two users with a few dozen posts and likes: enough rows for the planner to have choices. */
async function world (t: Test): Promise<World> {
  const app = await build(t)
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  for (let i = 0; i < 30; i++) {
    const id = await createPost(app.db, i % 3 === 0 ? bob.id : alice.id, { title: `post ${i}`, content: `content ${i}` })
    if (i % 2 === 0) await likePost(app.db, alice.id, id)
  }
  return { app, alice, bob }
}

t.test('authenticated GET /users/me runs one statement, by primary keys', async (t) => {
  const { app, alice } = await world(t)
  let status = 0
  const run = await statementsRunBy(app, async () => {
    status = (await app.inject({ url: '/users/me', headers: alice.auth })).statusCode
  })
  t.equal(status, 200)
  t.equal(run.length, 1, 'one query: the user joined with the token\'s session')
  t.match(run[0], CURRENT_USER)
  t.match(run[0], /"sessions"\."revoked_at" is null/, 'the query checks revocation')
  await assertIndexed(t, app, run[0] as string, {
    sqlite: [
      'SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 (id=?)',
      'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)'
    ],
    postgres: [
      'Index Scan using sessions_pkey on sessions',
      'Index Scan using users_pkey on users'
    ]
  }, 'current user')
})

/**
 * PostgreSQL's liked flag is a probe of the likes primary key per row of the page, on both columns: not
 * a read of every like of the viewer's (a hashed subplan or a merge join), whose cost grows with them.
 */
async function assertLikedByProbe (t: Test, app: App, sql: string, what: string): Promise<void> {
  if (app.db.engine !== 'postgres') return
  const likes = planSteps(await postgresPlanOf(app, sql)).map((s) => s.node).filter((n) => n['Relation Name'] === 'likes')
  t.equal(likes.length, 1, `${what}: likes read once in the plan`)
  t.match(likes[0]?.['Index Cond'], /user_id = \$\d+\) AND \(post_id = posts\.id\)/, `${what}: by (user_id, post_id), row by row`)
}

t.test('GET /posts: one statement whatever the page size, all indexed', async (t) => {
  const { app, alice } = await world(t)
  const counts: number[] = []
  let statements: string[] = []
  for (const limit of [1, 20, 100]) {
    for (const headers of [{}, alice.auth]) {
      let body: { items: { liked?: boolean }[], total: number } = { items: [], total: 0 }
      statements = await statementsRunBy(app, async () => {
        body = (await app.inject({ url: `/posts?limit=${limit}`, headers })).json()
      })
      t.equal(body.items.length, Math.min(limit, 30), `limit=${limit}: the page is full`)
      t.equal(body.total, 30, `limit=${limit}: the total`)
      t.equal(body.items.every((p) => typeof p.liked === 'boolean'), 'authorization' in headers,
        `limit=${limit}: liked present exactly when a token is sent`)
      counts.push(statements.length - ('authorization' in headers ? 1 : 0))
    }
  }
  t.same(counts, Array<number>(counts.length).fill(1), 'the page with its total: one statement, plus the user for a token')

  const page = only(statements, POST_PAGE, 'the page')
  await assertIndexed(t, app, page, {
    sqlite: [
      // From the first id of the page down: the same key search as a page by cursor.
      'SEARCH posts USING INTEGER PRIMARY KEY (rowid<?)',
      BOUNDED_ID_SCAN,
      'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)',
      // The liked flag: one probe of the likes primary key per post of the page.
      'SEARCH likes USING COVERING INDEX sqlite_autoindex_likes_1 (user_id=? AND post_id=?)',
      // The total: one row of the counter, not count(*).
      'SEARCH row_counts USING PRIMARY KEY (name=?)'
    ],
    postgres: [
      'Index Scan Backward using posts_pkey on posts',
      PG_BOUNDED_ID_SCAN,
      'Index Scan using users_pkey on users',
      'Index Only Scan using likes_user_id_post_id_pk on likes'
    ]
  }, 'post page with liked')
  await assertLikedByProbe(t, app, page, 'post page')
  if (app.db.engine === 'postgres') {
    // The plans checked here are the generic ones, and the pool's connections run exactly those.
    const { rows } = await (app.db.q as unknown as { execute: (q: SQL) => Promise<{ rows: { plan_cache_mode: string }[] }> }).execute(sql`show plan_cache_mode`)
    t.equal(rows[0]?.plan_cache_mode, 'force_generic_plan', 'the pool runs the generic plans, planned once per connection')
  }
  t.match(page, new RegExp(String.raw`\(select cast\("n" as integer\) from "row_counts" where "row_counts"\."name" = ${P}\)`), 'the total comes from the counter')
  t.notOk(statements.some((s) => /count\(\*\)/.test(s)), 'nothing counts the posts table')

  // Past the end there is no row to carry the total: that page asks for it apart.
  let beyond: { items: unknown[], total: number } = { items: [], total: 0 }
  const past = await statementsRunBy(app, async () => { beyond = (await app.inject({ url: '/posts?limit=5&skip=30' })).json() })
  t.same([beyond.items.length, beyond.total], [0, 30], 'an empty page past the end still has the total')
  t.equal(past.length, 2, 'the page, then the total')
  const total = only(past, POST_TOTAL, 'the total')
  if (app.db.engine === 'postgres') {
    t.equal(describePlan(await postgresPlanOf(app, total)), 'Index Scan using row_counts_pkey on row_counts (name = $1)',
      'the total is one row of the counter, not count(*)')
  } else {
    t.same(planOf(app, total), ['SEARCH row_counts USING PRIMARY KEY (name=?)'], 'the total is one row of the counter, not count(*)')
  }

  // A deep page is planned the same way: the offset steps through the id index only.
  const deep = await statementsRunBy(app, () => app.inject({ url: '/posts?limit=5&skip=25' }))
  await assertIndexed(t, app, only(deep, POST_PAGE, 'a deep page'), { sqlite: [BOUNDED_ID_SCAN], postgres: [PG_BOUNDED_ID_SCAN] }, 'deep page')
})

t.test('GET /users/{id}/posts: the page and its total through posts_author_idx', async (t) => {
  const { app, alice, bob } = await world(t)
  let body: { items: { author: { id: number } }[], total: number } = { items: [], total: 0 }
  const run = await statementsRunBy(app, async () => {
    body = (await app.inject({ url: `/users/${bob.id}/posts?limit=5`, headers: alice.auth })).json()
  })
  t.equal(body.total, 10)
  t.ok(body.items.every((p) => p.author.id === bob.id))
  t.equal(run.filter((s) => /from "posts"/.test(s)).length, 1, 'one statement for the page and its total')
  const page = only(run, AUTHOR_PAGE, 'the author page')
  await assertIndexed(t, app, page, {
    sqlite: [
      'SEARCH posts USING INDEX posts_author_idx (author_id=?)',
      'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)',
      'SEARCH likes USING COVERING INDEX sqlite_autoindex_likes_1 (user_id=? AND post_id=?)',
      // The total: the author's entries in the index, counted without reading a post.
      'SEARCH posts USING COVERING INDEX posts_author_idx (author_id=?)'
    ],
    postgres: [
      // Newest first straight from (author_id, id), so no sort of the author's posts.
      'Index Scan Backward using posts_author_idx on posts',
      'Index Scan using users_pkey on users',
      'Index Only Scan using likes_user_id_post_id_pk on likes',
      'Index Only Scan using posts_author_idx on posts'
    ]
  }, 'author page')
  await assertLikedByProbe(t, app, page, 'author page')

  // Past the end of the author's list, the total comes apart, through the same index.
  const past = await statementsRunBy(app, () => app.inject({ url: `/users/${bob.id}/posts?limit=5&skip=10` }))
  await assertIndexed(t, app, only(past, AUTHOR_TOTAL, 'the author total'), {
    sqlite: ['SEARCH posts USING COVERING INDEX posts_author_idx (author_id=?)'],
    postgres: ['Index Only Scan using posts_author_idx on posts']
  }, 'author total')
})

const POST_PAGE_AFTER = new RegExp(String.raw`from "posts" inner join "users" .* where "posts"\."id" < ${P} order by "posts"\."id" desc limit ${P}$`)
const AUTHOR_PAGE_AFTER = new RegExp(String.raw`from "posts" inner join "users" .* where \("posts"\."author_id" = ${P} and "posts"\."id" < ${P}\) order by "posts"\."id" desc limit ${P}$`)

t.test('pages by cursor: a key search, the same statements at any depth, on both lists', async (t) => {
  const { app, alice, bob } = await world(t)
  // The statements of a page: the caller's user and the page; an author's list also reads the author (404).
  for (const [list, pattern, perPage, expected] of [
    ['/posts', POST_PAGE_AFTER, 2, {
      // A search of the primary key below the cursor's id, walked newest first: no offset to step through.
      sqlite: ['SEARCH posts USING INTEGER PRIMARY KEY (rowid<?)', 'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)',
        'SEARCH likes USING COVERING INDEX sqlite_autoindex_likes_1 (user_id=? AND post_id=?)'],
      postgres: ['Index Scan Backward using posts_pkey on posts', 'Index Scan using users_pkey on users']
    }],
    [`/users/${alice.id}/posts`, AUTHOR_PAGE_AFTER, 3, {
      sqlite: ['SEARCH posts USING INDEX posts_author_idx (author_id=? AND id<?)', 'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)'],
      postgres: ['Index Scan Backward using posts_author_idx on posts', 'Index Scan using users_pkey on users']
    }]
  ] as const) {
    const counts: number[] = []
    const seen: number[] = []
    let cursor: string | null = null
    let statements: string[] = []
    do {
      const url: string = `${list}?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`
      let body: { items: { id: number, liked?: boolean }[], next_cursor: string | null } = { items: [], next_cursor: null }
      const run = await statementsRunBy(app, async () => {
        body = (await app.inject({ url, headers: bob.auth })).json()
      })
      if (cursor !== null) statements = run
      counts.push(run.length)
      seen.push(...body.items.map((p) => p.id))
      t.ok(body.items.every((p) => typeof p.liked === 'boolean'), `${url}: liked on a cursor page`)
      cursor = body.next_cursor
    } while (cursor !== null)
    t.ok(counts.length >= 4, `${list}: several pages deep`)
    t.same(counts, Array<number>(counts.length).fill(perPage), `${list}: ${perPage} statements on every page, first or deepest`)
    t.same(seen, [...seen].sort((a, b) => b - a), `${list}: newest first`)
    const page = only(statements, pattern, `${list} page by cursor`)
    t.notMatch(page, /offset/, `${list}: no offset by cursor`)
    await assertIndexed(t, app, page, expected, `${list} page by cursor`)
    if (app.db.engine === 'postgres') {
      // Not the bounded walk of the whole key that an offset page is: an index condition on the id.
      const plan = planSteps(await postgresPlanOf(app, page)).map((s) => s.node)
      const scan = plan.find((n) => describeNode(n) === expected.postgres[0])
      t.match(scan?.['Index Cond'], /id < \$\d+/, `${list}: the scan starts at the cursor (plan: ${describePlan(plan[0]!)})`)
    }
  }
})

/** The one statement of a page of `url` that reads `from`, and the page's body. */
async function pageStatement (t: Test, app: App, url: string, headers: Record<string, string>, pattern: RegExp): Promise<{ sql: string, body: { items: { id: number }[], total: number } }> {
  let body = { items: [] as { id: number }[], total: 0 }
  const run = await statementsRunBy(app, async () => {
    const res = await app.inject({ url, headers })
    t.equal(res.statusCode, 200, `${url}: 200`)
    body = res.json()
  })
  return { sql: only(run, pattern, url), body }
}

t.test('filtered lists, the feed, comments and tags: every read an index search', async (t) => {
  const { app, alice, bob } = await world(t)
  const { posts } = app.db.t
  // Tags on a third of the posts, bob followed by alice, a few comments.
  const rows = await app.db.q.select({ id: posts.id, authorId: posts.authorId }).from(posts)
  for (const { id, authorId } of rows.filter((r) => r.id % 2 === 0)) {
    const res = await app.inject({ method: 'PATCH', url: `/posts/${id}`, headers: authorId === bob.id ? bob.auth : alice.auth, payload: { tags: ['news', `t${id % 5}`] } })
    t.equal(res.statusCode, 200)
  }
  await app.inject({ method: 'PUT', url: `/users/${bob.id}/follow`, headers: alice.auth })
  for (let i = 0; i < 6; i++) await app.inject({ method: 'POST', url: '/posts/2/comments', headers: bob.auth, payload: { body: `c${i}` } })

  const PAGE = /^select "posts"\."id", "posts"\."title"/
  for (const [url, expected] of [
    ['/posts?tag=news&limit=3', {
      sqlite: ['SEARCH post_tags USING COVERING INDEX post_tags_tag_post_idx (tag_id=?)', 'SEARCH tags USING COVERING INDEX tags_name_unique (name=?)',
        'SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)'],
      postgres: ['Index Only Scan Backward using post_tags_tag_post_idx on post_tags']
    }],
    [`/posts?liked_by=${alice.id}&limit=3`, {
      sqlite: ['SEARCH likes USING COVERING INDEX sqlite_autoindex_likes_1 (user_id=?)', 'SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)'],
      postgres: ['Index Only Scan using likes_user_id_post_id_pk on likes']
    }],
    [`/posts?author=${bob.id}&tag=news&limit=3`, {
      sqlite: ['SEARCH post_tags USING COVERING INDEX post_tags_tag_post_idx (tag_id=?)'],
      postgres: []
    }],
    ['/feed?limit=3', {
      sqlite: ['SEARCH follows USING COVERING INDEX sqlite_autoindex_follows_1 (follower_id=?)', 'SEARCH posts USING COVERING INDEX posts_author_idx (author_id=?)'],
      postgres: ['Index Only Scan using follows_follower_id_followee_id_pk on follows'],
      feed: true
    }]
  ] as const) {
    const { sql, body } = await pageStatement(t, app, url, alice.auth, PAGE)
    t.ok(body.items.length > 0 && body.total >= body.items.length, `${url}: a page (${body.items.length} of ${body.total})`)
    await assertIndexed(t, app, sql, expected, url)
    const next = await pageStatement(t, app, `${url}&skip=1`, alice.auth, PAGE)
    await assertIndexed(t, app, next.sql, expected, `${url}&skip=1`)
  }

  // A tag's page past the end: the tag's counter, one row.
  const past = await statementsRunBy(app, () => app.inject({ url: '/posts?tag=news&skip=100' }))
  const total = only(past, /^select cast\("post_count" as integer\) from "tags"/, 'the tag total')
  await assertIndexed(t, app, total, { sqlite: ['SEARCH tags USING INDEX tags_name_unique (name=?)'], postgres: ['Index Scan using tags_name_unique on tags'] }, 'tag total')

  // Comments, both orders, by offset and by cursor; their total.
  for (const order of ['newest', 'oldest']) {
    let cursor = ''
    for (const by of ['offset', 'cursor']) {
      let body = { next_cursor: '' }
      const run = await statementsRunBy(app, async () => {
        body = (await app.inject({ url: `/posts/2/comments?order=${order}&limit=2${by === 'cursor' ? `&cursor=${cursor}` : ''}`, headers: alice.auth })).json()
      })
      cursor = body.next_cursor
      for (const sql of run.filter((s) => /from "comments"/.test(s))) {
        await assertIndexed(t, app, sql, {
          sqlite: [/count/.test(sql) ? 'SEARCH comments USING COVERING INDEX comments_post_idx (post_id=?)' : 'SEARCH comments USING INDEX comments_post_idx (post_id=?' + (by === 'cursor' ? (order === 'newest' ? ' AND id<?)' : ' AND id>?)') : ')')],
          postgres: []
        }, `comments ${order} by ${by}: ${sql.slice(0, 50)}`)
      }
    }
  }

  // The tags, most used first, straight from tags_post_count_idx.
  const tagRun = await statementsRunBy(app, () => app.inject({ url: '/tags?limit=2' }))
  const tagPage = only(tagRun, /order by "tags"\."post_count" desc/, 'the tag page')
  if (app.db.engine === 'sqlite') {
    t.same(planOf(app, tagPage), ['SEARCH tags USING COVERING INDEX tags_post_count_idx (post_count>?)'], 'the tag page walks the index in its order, stopped by LIMIT')
  } else {
    t.match(describePlan(await postgresPlanOf(app, tagPage)), /Index (Only )?Scan using tags_post_count_idx on tags/, 'the tag page walks the index in its order')
  }
})

t.test('one post, and PATCH by its owner: every statement by primary key', async (t) => {
  const { app, alice } = await world(t)
  const run = await statementsRunBy(app, async () => {
    t.equal((await app.inject({ url: '/posts/2', headers: alice.auth })).statusCode, 200)
    t.equal((await app.inject({ method: 'PATCH', url: '/posts/2', headers: alice.auth, payload: { title: 'new' } })).statusCode, 200)
  })
  const reads = [...new Set(run.filter((s) => /^(select|update|delete)/.test(s)))]
  t.ok(reads.length >= 3, 'the post, its update, the view')
  for (const sql of reads) await assertIndexed(t, app, sql, { sqlite: [], postgres: [] }, sql.slice(0, 60))
  t.ok(reads.some((s) => /^update "posts"/.test(s)), 'the update is among them')
})

t.test('logins and refresh: lookups by email, by lower(username) and by token hash are index searches', async (t) => {
  const { app, alice } = await world(t)
  let refresh = ''
  const run = await statementsRunBy(app, async () => {
    await login(app, alice.email.toUpperCase())
    refresh = (await login(app, alice.username.toUpperCase())).refresh
    const res = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: refresh } })
    t.equal(res.statusCode, 200, 'the refresh worked')
  })
  await assertIndexed(t, app, only(run, new RegExp(String.raw`from "users" where "users"\."email" = ${P}`), 'login by email'), {
    sqlite: ['SEARCH users USING INDEX users_email_unique (email=?)'],
    postgres: ['Index Scan using users_email_unique on users']
  }, 'login by email')
  await assertIndexed(t, app, only(run, new RegExp(String.raw`from "users" where lower\("users"\."username"\) = ${P}`), 'login by username'), {
    sqlite: ['SEARCH users USING INDEX users_username_lower_unique (<expr>=?)'],
    postgres: ['Index Scan using users_username_lower_unique on users']
  }, 'login by username')
  await assertIndexed(t, app, only(run, /from "refresh_tokens" inner join "sessions"/, 'refresh-token lookup'), {
    sqlite: [
      'SEARCH refresh_tokens USING INDEX refresh_tokens_hash_unique (token_hash=?)',
      'SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 (id=?)'
    ],
    postgres: [
      'Index Scan using refresh_tokens_hash_unique on refresh_tokens',
      'Index Scan using sessions_pkey on sessions'
    ]
  }, 'refresh-token lookup')
  // Everything else a login touches (session sweep, inserts, updates) is indexed too.
  for (const sql of new Set(run.filter((s) => /^(select|update|delete)/.test(s)))) {
    await assertIndexed(t, app, sql, { sqlite: [], postgres: [] }, sql.slice(0, 60))
  }
})

t.test('the verification cache never replaces the per-request checks', async (t) => {
  t.test('a revoked session is refused at once, although its token is cached', async (t) => {
    const { app, alice } = await world(t)
    t.equal((await app.inject({ url: '/users/me', headers: alice.auth })).statusCode, 200)
    t.equal((await app.inject({ url: '/users/me', headers: alice.auth })).statusCode, 200, 'second use: a cache hit')
    const run = await statementsRunBy(app, () => app.inject({ url: '/users/me', headers: alice.auth }))
    t.equal(run.length, 1, 'a cached token still runs the user and session query')
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: alice.refresh } })).statusCode, 204)
    t.equal((await app.inject({ url: '/users/me', headers: alice.auth })).statusCode, 401, 'logged out: 401')
  })

  t.test('a deleted user is refused at once, although their token is cached', async (t) => {
    const { app, bob } = await world(t)
    t.equal((await app.inject({ url: '/users/me', headers: bob.auth })).statusCode, 200)
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth, payload: { password: PASSWORD } })).statusCode, 204)
    t.equal((await app.inject({ url: '/users/me', headers: bob.auth })).statusCode, 401)
  })

  t.test('a cached token is refused once it expires', async (t) => {
    const app = await build(t, { ACCESS_TOKEN_TTL: '60' })
    const carol = await loginAs(app)
    t.equal((await app.inject({ url: '/users/me', headers: carol.auth })).statusCode, 200, 'verified and cached')
    t.equal((await app.inject({ url: '/users/me', headers: carol.auth })).statusCode, 200, 'served from the cache')
    // A hit hands back the very payload object that was cached: proof that the cache is on.
    t.equal(app.jwt.verify(carol.access), app.jwt.verify(carol.access), 'the verifier caches')
    const realNow = Date.now
    try {
      // iat and exp are whole seconds, so up to a second of the 60 may be gone at issue: 58 s, not 59,
      // or the check fails whenever the login happened late in its second.
      Date.now = () => realNow() + 58_000
      t.equal((await app.inject({ url: '/users/me', headers: carol.auth })).statusCode, 200, 'two seconds before exp: still valid')
      Date.now = () => realNow() + 61_500
      const res = await app.inject({ url: '/users/me', headers: carol.auth })
      t.equal(res.statusCode, 401, 'after exp: 401, not a stale cache hit')
      t.equal(res.json().message, 'Could not validate credentials')
    } finally {
      Date.now = realNow
    }
  })
})
