// The hot paths, checked for shape rather than speed (the benchmark, `npm run bench`, measures):
// which statements a request runs and how many, how SQLite plans each one (EXPLAIN QUERY PLAN:
// an index SEARCH, never a full SCAN of a growing table), and that the JWT verification cache
// never stands in for the per-request user and session check.
import t, { type Test } from 'tap'
import type { App } from '../src/app.js'
import { sqliteClientOf } from '../src/db/sqlite/engine.js'
import { createPost, likePost } from '../src/domain/posts.js'
import { build, login, loginAs, type TestUser } from './helper.js'

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

/** SQLite's plan for a statement, one line per step (`SEARCH posts USING ...`), parameters left null. */
function planOf (app: App, sql: string): string[] {
  const params = (sql.match(/\?/g) ?? []).length
  const rows = sqliteClientOf(app.db).prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array<null>(params).fill(null)) as { detail: string }[]
  return rows.map((r) => r.detail)
}

// The tables that grow with use. A step that reads one of them whole is a bug on a hot path.
const GROWING = /^SCAN (posts|likes|users|sessions|refresh_tokens)\b/
// The one scan allowed: the page's ids, walked newest first through the small posts_id_idx and
// stopped by LIMIT/OFFSET, never read to the end.
const BOUNDED_ID_SCAN = 'SCAN posts USING COVERING INDEX posts_id_idx'

function assertIndexed (t: Test, app: App, sql: string, expected: string[], what: string): string[] {
  const plan = planOf(app, sql)
  const scans = plan.filter((step) => GROWING.test(step) && step !== BOUNDED_ID_SCAN)
  t.same(scans, [], `${what}: no full scan (plan: ${plan.join(' | ')})`)
  t.notOk(plan.some((step) => step.includes('TEMP B-TREE')), `${what}: no sort of an intermediate result`)
  for (const step of expected) t.ok(plan.includes(step), `${what}: ${step}`)
  if (plan.includes(BOUNDED_ID_SCAN)) t.match(sql, /order by "posts"\."id" desc limit \? offset \?/, `${what}: the id scan is bounded by LIMIT`)
  return plan
}

const only = (statements: string[], pattern: RegExp, what: string): string => {
  const matching = [...new Set(statements.filter((s) => pattern.test(s)))]
  if (matching.length !== 1) throw new Error(`expected one statement for ${what}, got ${matching.length}: ${statements.join('\n')}`)
  return matching[0] as string
}

const CURRENT_USER = /from "sessions" inner join "users"/
const POST_PAGE = /from "posts" inner join "users" .* where "posts"\."id" in \(select/
const AUTHOR_PAGE = /from "posts" inner join "users" .* where "posts"\."author_id" = \?/
const POST_TOTAL = /from "row_counts"/
const AUTHOR_TOTAL = /count\(\*\).* from "posts" where "posts"\."author_id" = \?/

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
  assertIndexed(t, app, run[0] as string, [
    'SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 (id=?)',
    'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)'
  ], 'current user')
})

t.test('GET /posts: a constant number of statements whatever the page size, all indexed', async (t) => {
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
  t.same(counts, Array<number>(counts.length).fill(2), 'the page and its total: two statements, plus the user for a token')

  const page = only(statements, POST_PAGE, 'the page')
  assertIndexed(t, app, page, [
    'SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)',
    BOUNDED_ID_SCAN,
    'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)',
    // The liked flag: one probe of the likes primary key per post of the page.
    'SEARCH likes USING COVERING INDEX sqlite_autoindex_likes_1 (user_id=? AND post_id=?)'
  ], 'post page with liked')
  const total = only(statements, POST_TOTAL, 'the total')
  t.same(planOf(app, total), ['SEARCH row_counts USING PRIMARY KEY (name=?)'], 'the total is one row of the counter, not count(*)')
  t.notOk(statements.some((s) => /count\(\*\)/.test(s)), 'nothing counts the posts table')

  // A deep page is planned the same way: the offset steps through the id index only.
  const deep = await statementsRunBy(app, () => app.inject({ url: '/posts?limit=5&skip=25' }))
  assertIndexed(t, app, only(deep, POST_PAGE, 'a deep page'), [BOUNDED_ID_SCAN], 'deep page')
})

t.test('GET /users/{id}/posts: the page and its total through posts_author_idx', async (t) => {
  const { app, alice, bob } = await world(t)
  let body: { items: { author: { id: number } }[], total: number } = { items: [], total: 0 }
  const run = await statementsRunBy(app, async () => {
    body = (await app.inject({ url: `/users/${bob.id}/posts?limit=5`, headers: alice.auth })).json()
  })
  t.equal(body.total, 10)
  t.ok(body.items.every((p) => p.author.id === bob.id))
  assertIndexed(t, app, only(run, AUTHOR_PAGE, 'the author page'), [
    'SEARCH posts USING INDEX posts_author_idx (author_id=?)',
    'SEARCH users USING INTEGER PRIMARY KEY (rowid=?)',
    'SEARCH likes USING COVERING INDEX sqlite_autoindex_likes_1 (user_id=? AND post_id=?)'
  ], 'author page')
  assertIndexed(t, app, only(run, AUTHOR_TOTAL, 'the author total'),
    ['SEARCH posts USING COVERING INDEX posts_author_idx (author_id=?)'], 'author total')
})

t.test('one post, and PATCH by its owner: every statement by primary key', async (t) => {
  const { app, alice } = await world(t)
  const run = await statementsRunBy(app, async () => {
    t.equal((await app.inject({ url: '/posts/2', headers: alice.auth })).statusCode, 200)
    t.equal((await app.inject({ method: 'PATCH', url: '/posts/2', headers: alice.auth, payload: { title: 'new' } })).statusCode, 200)
  })
  const reads = [...new Set(run.filter((s) => /^(select|update|delete)/.test(s)))]
  t.ok(reads.length >= 3, 'the post, its update, the view')
  for (const sql of reads) assertIndexed(t, app, sql, [], sql.slice(0, 60))
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
  assertIndexed(t, app, only(run, /from "users" where "users"\."email" = \?/, 'login by email'),
    ['SEARCH users USING INDEX users_email_unique (email=?)'], 'login by email')
  assertIndexed(t, app, only(run, /from "users" where lower\("users"\."username"\) = \?/, 'login by username'),
    ['SEARCH users USING INDEX users_username_lower_unique (<expr>=?)'], 'login by username')
  assertIndexed(t, app, only(run, /from "refresh_tokens" inner join "sessions"/, 'refresh-token lookup'), [
    'SEARCH refresh_tokens USING INDEX refresh_tokens_hash_unique (token_hash=?)',
    'SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 (id=?)'
  ], 'refresh-token lookup')
  // Everything else a login touches (session sweep, inserts, updates) is indexed too.
  for (const sql of new Set(run.filter((s) => /^(select|update|delete)/.test(s)))) assertIndexed(t, app, sql, [], sql.slice(0, 60))
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
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth })).statusCode, 204)
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
      Date.now = () => realNow() + 59_000
      t.equal((await app.inject({ url: '/users/me', headers: carol.auth })).statusCode, 200, 'a second before exp: still valid')
      Date.now = () => realNow() + 61_500
      const res = await app.inject({ url: '/users/me', headers: carol.auth })
      t.equal(res.statusCode, 401, 'after exp: 401, not a stale cache hit')
      t.equal(res.json().message, 'Could not validate credentials')
    } finally {
      Date.now = realNow
    }
  })
})
