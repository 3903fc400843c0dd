import type BetterSqlite from 'better-sqlite3'
import { eq } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { App } from '../../src/app.js'
import { sqliteClientOf } from '../../src/db/sqlite/engine.js'
import { createPost } from '../../src/domain/posts.js'
import { build, countRows, inactive, isError, loginAs, postNotFound, setActive, type TestUser, the401 } from '../helper.js'


const like = (app: App, id: number | string, user?: TestUser) =>
  app.inject({ method: 'PUT', url: `/posts/${id}/like`, headers: user?.auth ?? {} })
const unlike = (app: App, id: number | string, user?: TestUser) =>
  app.inject({ method: 'DELETE', url: `/posts/${id}/like`, headers: user?.auth ?? {} })
const read = async (app: App, id: number, user?: TestUser) =>
  (await app.inject({ url: `/posts/${id}`, headers: user?.auth ?? {} })).json()
/** The stored counter, and the rows it is meant to count. */
const stored = async (app: App, id: number) => {
  const { posts, likes } = app.db.t
  const [row] = await app.db.q.select({ n: posts.likeCount }).from(posts).where(eq(posts.id, id))
  return { likeCount: row?.n, rows: await countRows(app, likes, eq(likes.postId, id)) }
}

const statuses = (responses: LightMyRequestResponse[]) => {
  const tally: Record<number, number> = {}
  for (const r of responses) tally[r.statusCode] = (tally[r.statusCode] ?? 0) + 1
  return tally
}

t.test('PUT and DELETE /posts/{id}/like', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const id = await createPost(app.db, bob.id, { title: 'Likeable', content: 'x' })

  await t.test('204, idempotent both ways', async (t) => {
    const first = await like(app, id, alice)
    t.equal(first.statusCode, 204, 'like: 204')
    t.equal(first.body, '', 'no body')
    t.match(await read(app, id, alice), { like_count: 1, liked: true }, 'liked, counted once')
    const second = await like(app, id, alice)
    t.equal(second.statusCode, 204, 'liking again: 204')
    t.match(await read(app, id, alice), { like_count: 1, liked: true }, 'still counted once')
    t.same(await stored(app, id), { likeCount: 1, rows: 1 }, 'one row, counter 1')

    t.equal((await like(app, id, bob)).statusCode, 204, 'the author may like their own post')
    t.equal((await read(app, id)).like_count, 2)

    const off = await unlike(app, id, alice)
    t.equal(off.statusCode, 204, 'unlike: 204')
    t.equal(off.body, '', 'no body')
    t.match(await read(app, id, alice), { like_count: 1, liked: false })
    const offAgain = await unlike(app, id, alice)
    t.equal(offAgain.statusCode, 204, 'unliking again: 204')
    t.match(await read(app, id, alice), { like_count: 1, liked: false }, 'the counter does not go below the rows')
    t.equal((await unlike(app, id, bob)).statusCode, 204)
    t.equal((await unlike(app, id, bob)).statusCode, 204)
    t.same(await stored(app, id), { likeCount: 0, rows: 0 }, 'back to 0, never negative')
    t.equal((await read(app, id)).like_count, 0)
  })

  await t.test('404 on a missing post, 400 on a bad id', async (t) => {
    postNotFound(t, await like(app, 999999, alice), 'PUT on a missing post')
    postNotFound(t, await unlike(app, 999999, alice), 'DELETE on a missing post')
    isError(t, await like(app, 'abc', alice), 400, 'params/id must be integer', 'PUT /posts/abc/like')
    isError(t, await unlike(app, '0', alice), 400, 'params/id must be >= 1', 'DELETE /posts/0/like')
    isError(t, await like(app, '1e400', alice), 400, 'params/id must be integer', 'PUT /posts/1e400/like')
    t.equal(await countRows(app, app.db.t.likes), 0, 'no like row was written')
  })

  await t.test('anonymous is 401 (even on a missing post); inactive is 403', async (t) => {
    the401(t, await like(app, id), 'anonymous PUT')
    the401(t, await unlike(app, id), 'anonymous DELETE')
    the401(t, await like(app, 999999), 'anonymous PUT on a missing post (not 404)')
    the401(t, await unlike(app, 999999), 'anonymous DELETE on a missing post (not 404)')
    the401(t, await app.inject({ method: 'PUT', url: `/posts/${id}/like`, headers: { authorization: 'Bearer junk' } }), 'a junk token')

    const carol = await loginAs(app)
    t.equal((await like(app, id, carol)).statusCode, 204, 'carol likes while active')
    await setActive(app, carol.id, false)
    inactive(t, await unlike(app, id, carol), 'inactive DELETE')
    inactive(t, await like(app, id, carol), 'inactive PUT')
    inactive(t, await like(app, 999999, carol), 'inactive PUT on a missing post (not 404)')
    t.same(await stored(app, id), { likeCount: 1, rows: 1 }, 'carol\'s like stays: the refused unlike changed nothing')
    t.equal((await read(app, id, carol)).liked, true, 'an inactive user still reads, with `liked`')
  })
})

t.test('concurrent likes and unlikes', async (t) => {
  const app = await build(t)
  const author = await loginAs(app)
  const fans: TestUser[] = []
  for (let i = 0; i < 10; i++) fans.push(await loginAs(app))

  await t.test('30 concurrent PUTs from one user count once', async (t) => {
    const id = await createPost(app.db, author.id, { title: 'Hot', content: 'x' })
    const fan = fans[0]!
    const res = await Promise.all(Array.from({ length: 30 }, () => like(app, id, fan)))
    t.same(statuses(res), { 204: 30 }, 'every one is a 204, none a 500')
    t.same(await stored(app, id), { likeCount: 1, rows: 1 }, 'one row, like_count exactly 1')
    t.equal((await read(app, id)).like_count, 1)
  })

  await t.test('concurrent likes from 10 users count 10', async (t) => {
    const id = await createPost(app.db, author.id, { title: 'Popular', content: 'x' })
    const res = await Promise.all(fans.map((fan) => like(app, id, fan)))
    t.same(statuses(res), { 204: 10 })
    t.same(await stored(app, id), { likeCount: 10, rows: 10 })
    // And all of them twice more, at once.
    const again = await Promise.all([...fans, ...fans].map((fan) => like(app, id, fan)))
    t.same(statuses(again), { 204: 20 })
    t.same(await stored(app, id), { likeCount: 10, rows: 10 }, 'still 10')
  })

  await t.test('interleaved likes and unlikes: never a 500, the counter equals the rows', async (t) => {
    const id = await createPost(app.db, author.id, { title: 'Contested', content: 'x' })
    // A fixed, varied pattern: each fan sends a different sequence of likes and unlikes, all in flight together.
    const requests: Array<Promise<LightMyRequestResponse>> = []
    for (let round = 0; round < 6; round++) {
      fans.forEach((fan, i) => {
        const doLike = ((i + 1) * (round + 3)) % 3 !== 0
        requests.push(doLike ? like(app, id, fan) : unlike(app, id, fan))
      })
    }
    const res = await Promise.all(requests)
    t.equal(res.length, 60)
    t.same(statuses(res), { 204: 60 }, 'every one is a 204')
    const after = await stored(app, id)
    t.equal(after.likeCount, after.rows, `like_count (${after.likeCount}) equals the rows in likes (${after.rows})`)
    t.ok(after.rows >= 0 && after.rows <= 10, 'between 0 and 10 likes')
    t.equal((await read(app, id)).like_count, after.rows, 'the API shows the same count')
    let likedBy = 0
    for (const fan of fans) if ((await read(app, id, fan)).liked === true) likedBy++
    t.equal(likedBy, after.rows, '`liked` is true for exactly as many fans as there are rows')
  })

  await t.test('likes racing the post\'s deletion: 204 or 404, never a 500, nothing left behind', async (t) => {
    const id = await createPost(app.db, author.id, { title: 'Doomed', content: 'x' })
    const res = await Promise.all([
      ...fans.slice(0, 5).map((fan) => like(app, id, fan)),
      app.inject({ method: 'DELETE', url: `/posts/${id}`, headers: author.auth }),
      ...fans.slice(5).map((fan) => like(app, id, fan)),
      ...fans.slice(0, 5).map((fan) => unlike(app, id, fan))
    ])
    t.ok(res.every((r) => r.statusCode === 204 || r.statusCode === 404), `only 204 and 404: ${JSON.stringify(statuses(res))}`)
    t.equal((await stored(app, id)).rows, 0, 'no like row outlives the post')
  })
})

/**
 * Records every statement the engine executes while `fn` runs (drizzle reports each execution of a
 * prepared statement too, so a statement re-run from the cache counts each time it runs). On SQLite
 * it also counts calls of better-sqlite3's prepare, which must not grow with the page size.
 */
async function countStatements (app: App, fn: () => Promise<unknown>) {
  const executed: string[] = []
  let prepared = 0
  app.db.statements.listener = (sql) => executed.push(sql)
  const client: BetterSqlite.Database | undefined = app.db.engine === 'sqlite' ? sqliteClientOf(app.db) : undefined
  const originalPrepare = client?.prepare
  if (client !== undefined && originalPrepare !== undefined) {
    client.prepare = function (this: BetterSqlite.Database, source: string) {
      prepared++
      return originalPrepare.call(this, source)
    } as typeof client.prepare
  }
  try {
    await fn()
  } finally {
    app.db.statements.listener = undefined
    if (client !== undefined && originalPrepare !== undefined) client.prepare = originalPrepare
  }
  return { executed, prepared }
}

t.test('a page of posts with `liked` and `like_count` costs a constant number of SQL statements', async (t) => {
  const app = await build(t)
  const viewer = await loginAs(app)
  const author = await loginAs(app)
  const ids: number[] = []
  for (let i = 0; i < 40; i++) ids.push(await createPost(app.db, author.id, { title: `P${i}`, content: 'x' }))
  for (const id of ids.filter((_, i) => i % 3 === 0)) t.equal((await like(app, id, viewer)).statusCode, 204)

  // A list's statements are prepared on its first page; none after, whatever the page size.
  t.equal((await app.inject({ url: '/posts?limit=2', headers: viewer.auth })).statusCode, 200)
  const pages: Record<number, { executed: string[], prepared: number }> = {}
  for (const limit of [1, 5, 20, 100]) {
    let res: LightMyRequestResponse | undefined
    pages[limit] = await countStatements(app, async () => {
      res = await app.inject({ url: `/posts?limit=${limit}`, headers: viewer.auth })
    })
    t.equal(res?.statusCode, 200)
    const page = res!.json()
    t.equal(page.items.length, Math.min(limit, 40), `limit=${limit}: a full page`)
    t.ok(page.items.every((p: { liked?: boolean }) => typeof p.liked === 'boolean'), `limit=${limit}: every post has \`liked\``)
    t.ok(page.items.every((p: { id: number, liked: boolean }) => p.liked === (ids.indexOf(p.id) % 3 === 0)), `limit=${limit}: \`liked\` is right`)
    t.comment(`limit=${limit}: ${pages[limit]!.executed.length} statements executed, ${pages[limit]!.prepared} prepared`)
  }
  const counts = Object.values(pages).map((p) => p.executed.length)
  t.ok(counts[0]! > 0, 'the measurement sees the statements (it is not counting nothing)')
  t.same(counts, [counts[0], counts[0], counts[0], counts[0]], `the same number of statements for pages of 1, 5, 20 and 100: ${counts.join(', ')}`)
  t.ok(counts[0]! <= 4, `a handful at most (auth lookup, the page, the total): ${counts[0]}`)
  t.same(pages[20]!.executed, pages[5]!.executed, 'the very same statements for a page of 5 and of 20')
  const prepared = Object.values(pages).map((p) => p.prepared)
  t.same(prepared, [0, 0, 0, 0], `and no statement prepared again: ${prepared.join(', ')}`)

  const anon = await countStatements(app, async () => {
    t.equal((await app.inject({ url: '/posts?limit=20' })).statusCode, 200)
  })
  t.ok(anon.executed.length <= counts[0]!, `anonymously no more: ${anon.executed.length}`)

  // One measurement at a time: each patches the shared prototype.
  const userPages: number[] = []
  for (const limit of [5, 20]) {
    const { executed } = await countStatements(app, async () => {
      t.equal((await app.inject({ url: `/users/${author.id}/posts?limit=${limit}`, headers: viewer.auth })).statusCode, 200)
    })
    userPages.push(executed.length)
  }
  t.equal(userPages[0], userPages[1], `/users/{id}/posts too: ${userPages.join(', ')}`)
})

t.test('`liked` on a user\'s posts is the viewer\'s, not the author\'s', async (t) => {
  const app = await build(t)
  const author = await loginAs(app)
  const viewer = await loginAs(app)
  const ids: number[] = []
  for (const title of ['one', 'two', 'three']) {
    ids.push((await app.inject({ method: 'POST', url: '/posts', headers: author.auth, payload: { title, content: 'x' } })).json().id)
  }
  t.equal((await app.inject({ method: 'PUT', url: `/posts/${ids[1]}/like`, headers: viewer.auth })).statusCode, 204, 'the viewer likes the second')
  t.equal((await app.inject({ method: 'PUT', url: `/posts/${ids[0]}/like`, headers: author.auth })).statusCode, 204, 'the author likes the first')
  const liked = async (who: typeof author) => Object.fromEntries(((await app.inject({ url: `/users/${author.id}/posts`, headers: who.auth })).json().items as Array<{ id: number, liked: boolean }>)
    .map((p) => [p.id, p.liked]))
  t.same(await liked(viewer), { [ids[0]!]: false, [ids[1]!]: true, [ids[2]!]: false }, 'the viewer sees their own like')
  t.same(await liked(author), { [ids[0]!]: true, [ids[1]!]: false, [ids[2]!]: false }, 'the author sees theirs')
})
