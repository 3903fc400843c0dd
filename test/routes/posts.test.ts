import { and, eq } from 'drizzle-orm'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { createPost } from '../../src/domain/posts.js'
import { badRequest, build, countRows, inactive, isError, isIsoUtc, loginAs, PASSWORD, postNotFound, setActive, type TestUser, the401, unknownProperty } from '../helper.js'

const POST_KEYS = ['author', 'content', 'created_at', 'description', 'id', 'like_count', 'slug', 'tags', 'title', 'updated_at']
const POST_KEYS_WITH_LIKED = [...POST_KEYS, 'liked'].sort()
const AUTHOR_KEYS = ['avatar_url', 'id', 'username']
const PAGE_KEYS = ['has_more', 'items', 'limit', 'next_cursor', 'skip', 'total']

const BAD_JSON = 'Body is not valid JSON'



const notYourPost = (t: Test, res: LightMyRequestResponse, what: string) =>
  isError(t, res, 403, 'Not your post', what)


const auth = (user?: TestUser) => (user === undefined ? {} : user.auth)
/** A test user's bearer header, or raw headers as given (for broken tokens). */
const headersOf = (who?: TestUser | Record<string, string>): Record<string, string> =>
  who === undefined ? {} : typeof who.auth === 'object' ? (who as TestUser).auth : who as Record<string, string>

function client (app: App) {
  const req = (opts: InjectOptions) => app.inject(opts)
  return {
    get: (url: string, who?: TestUser | Record<string, string>) => req({ url, headers: headersOf(who) }),
    create: (user: TestUser | undefined, payload: Record<string, unknown>) =>
      req({ method: 'POST', url: '/posts', headers: auth(user), payload }),
    createRaw: (user: TestUser, body: string) =>
      req({ method: 'POST', url: '/posts', headers: { ...user.auth, 'content-type': 'application/json' }, payload: body }),
    patch: (user: TestUser | undefined, id: number | string, payload: Record<string, unknown>) =>
      req({ method: 'PATCH', url: `/posts/${id}`, headers: auth(user), payload }),
    del: (user: TestUser | undefined, id: number | string) =>
      req({ method: 'DELETE', url: `/posts/${id}`, headers: auth(user) }),
    like: (user: TestUser, id: number) => req({ method: 'PUT', url: `/posts/${id}/like`, headers: user.auth })
  }
}

const postCount = (app: App) => countRows(app, app.db.t.posts)
const row = async (app: App, id: number) => (await app.db.q.select().from(app.db.t.posts).where(eq(app.db.t.posts.id, id)))[0]
const likeRows = (app: App, where: { userId?: number, postId?: number }) => {
  const { likes } = app.db.t
  return countRows(app, likes, and(
    where.userId === undefined ? undefined : eq(likes.userId, where.userId),
    where.postId === undefined ? undefined : eq(likes.postId, where.postId)
  ))
}

t.test('POST /posts', async (t) => {
  const app = await build(t)
  const api = client(app)
  const alice = await loginAs(app)
  const bob = await loginAs(app)

  await t.test('201, the author is the token\'s user', async (t) => {
    const res = await api.create(alice, { title: 'Hello', content: 'First post' })
    t.equal(res.statusCode, 201)
    const body = res.json()
    t.same(Object.keys(body).sort(), POST_KEYS_WITH_LIKED, 'a Post, with `liked` since the caller is logged in')
    t.same(body.author, { id: alice.id, username: alice.username, avatar_url: null, following: false }, 'the author is alice (whom the caller cannot follow)')
    t.equal(body.title, 'Hello')
    t.equal(body.content, 'First post')
    t.equal(body.like_count, 0)
    t.equal(body.liked, false)
    t.ok(Number.isInteger(body.id) && body.id > 0, 'an integer id')
    t.ok(isIsoUtc(body.created_at), 'created_at is ISO-8601 UTC')
    t.equal(body.updated_at, body.created_at, 'updated_at starts as created_at')
    t.equal((await row(app, body.id))?.authorId, alice.id, 'stored with alice as the author')

    const read = await api.get(`/posts/${body.id}`, alice)
    t.same(read.json(), body, 'GET answers the same post')
  })

  await t.test('a body naming an author, an id or a like count is a 400 and creates nothing', async (t) => {
    const before = await postCount(app)
    const smuggled: Array<Record<string, unknown>> = [
      { author_id: bob.id },
      { user_id: bob.id },
      { id: 4242 },
      { like_count: 99 },
      { created_at: '2000-01-01T00:00:00.000Z' },
      { author: { id: bob.id } }
    ]
    for (const extra of smuggled) {
      const res = await api.create(alice, { title: 'Smuggler', content: 'text', ...extra })
      badRequest(t, res, unknownProperty(extra, []), `extra ${Object.keys(extra)[0]}`)
    }
    // Written as raw text: a JS object literal would turn __proto__ into a prototype, not a key.
    const proto = await api.createRaw(alice, `{"title":"Smuggler","content":"text","__proto__":{"author_id":${bob.id}}}`)
    badRequest(t, proto, BAD_JSON, 'a raw "__proto__" key')
    const ctor = await api.createRaw(alice, `{"title":"Smuggler","content":"text","constructor":{"prototype":{"author_id":${bob.id}}}}`)
    t.equal(ctor.statusCode, 400, 'a raw "constructor.prototype" key: 400')
    t.equal(await postCount(app), before, 'no post was created')
    t.equal(await countRows(app, app.db.t.posts, eq(app.db.t.posts.authorId, bob.id)), 0, 'nothing written in bob\'s name')
  })

  await t.test('title and content bounds', async (t) => {
    const before = await postCount(app)
    const bad: Array<[string, Record<string, unknown>, string]> = [
      ['empty title', { title: '', content: 'c' }, 'body/title must NOT have fewer than 1 characters'],
      ['title of 201 characters', { title: 't'.repeat(201), content: 'c' }, 'body/title must NOT have more than 200 characters'],
      ['title of only spaces', { title: '     ', content: 'c' }, 'body/title must match pattern "\\S"'],
      ['title of only white space', { title: ' \t\n ', content: 'c' }, 'body/title must match pattern "\\S"'],
      ['empty content', { title: 't', content: '' }, 'body/content must NOT have fewer than 1 characters'],
      ['content of 50001 characters', { title: 't', content: 'c'.repeat(50_001) }, 'body/content must NOT have more than 50000 characters'],
      ['content of only spaces', { title: 't', content: '   ' }, 'body/content must match pattern "\\S"'],
      ['no title', { content: 'c' }, 'body must have required property \'title\''],
      ['no content', { title: 't' }, 'body must have required property \'content\''],
      ['a number as the title', { title: 5, content: 'c' }, 'body/title must be string'],
      ['null content', { title: 't', content: null }, 'body/content must be string']
    ]
    for (const [what, payload, message] of bad) badRequest(t, await api.create(alice, payload), message, what)
    t.equal(await postCount(app), before, 'none was created')

    const longest = await api.create(alice, { title: 'T'.repeat(200), content: 'C'.repeat(50_000) })
    t.equal(longest.statusCode, 201, 'a title of 200 and content of 50000 characters are accepted')
    t.equal(longest.json().title.length, 200, 'the title is stored whole')
    t.equal(longest.json().content.length, 50_000, 'the content is stored whole')
    const emoji = await api.create(alice, { title: '\u{1F58B}'.repeat(200), content: 'C' })
    t.equal(emoji.statusCode, 201, 'a title of 200 astral characters (400 UTF-16 units) is accepted: characters, not code units')
    t.equal([...emoji.json().title].length, 200)
    badRequest(t, await api.create(alice, { title: '\u{1F58B}'.repeat(201), content: 'C' }),
      'body/title must NOT have more than 200 characters', 'a title of 201 astral characters')
    const shortest = await api.create(alice, { title: 'T', content: 'C' })
    t.equal(shortest.statusCode, 201, 'one character each is accepted')
    const padded = await api.create(alice, { title: '  x  ', content: ' y ' })
    t.equal(padded.statusCode, 201, 'surrounding spaces are fine when there is text')
    t.equal(padded.json().title, '  x  ', 'and kept as sent')
  })

  await t.test('anonymous is the one 401; an inactive user is 403', async (t) => {
    const before = await postCount(app)
    the401(t, await api.create(undefined, { title: 'Anon', content: 'text' }), 'no token')
    the401(t, await app.inject({ method: 'POST', url: '/posts', headers: { authorization: 'Bearer not-a-token' }, payload: { title: 'Anon', content: 'text' } }), 'a junk token')
    const carol = await loginAs(app, 'user', { active: false })
    inactive(t, await api.create(carol, { title: 'Sleeping', content: 'text' }), 'inactive user')
    t.equal(await postCount(app), before, 'none was created')
  })
})

t.test('GET /posts/{id}', async (t) => {
  const app = await build(t)
  const api = client(app)
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const id = (await api.create(alice, { title: 'Readable', content: 'Body text' })).json().id

  await t.test('anonymous: exactly the Post fields, no `liked`', async (t) => {
    const res = await api.get(`/posts/${id}`)
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(Object.keys(body).sort(), POST_KEYS, 'exactly the Post fields')
    t.notOk('liked' in body, 'no `liked` for an anonymous reader')
    t.same(Object.keys(body.author).sort(), AUTHOR_KEYS, 'the author has exactly id, username, avatar_url')
    t.same(body.author, { id: alice.id, username: alice.username, avatar_url: null })
    t.notOk(JSON.stringify(body).includes(alice.email), 'no email of the author')
    t.match(body, { id, title: 'Readable', content: 'Body text', like_count: 0 })
    t.ok(isIsoUtc(body.created_at) && isIsoUtc(body.updated_at), 'ISO-8601 UTC times')
  })

  await t.test('a valid token adds `liked`', async (t) => {
    t.equal((await api.like(bob, id)).statusCode, 204)
    const asBob = (await api.get(`/posts/${id}`, bob)).json()
    t.same(Object.keys(asBob).sort(), POST_KEYS_WITH_LIKED)
    t.equal(asBob.liked, true, 'bob likes it')
    t.equal(asBob.like_count, 1)
    const asAlice = (await api.get(`/posts/${id}`, alice)).json()
    t.equal(asAlice.liked, false, 'alice does not')
    t.equal(asAlice.like_count, 1)
  })

  await t.test('an invalid token on an optional route is treated as anonymous', async (t) => {
    const [h, p, s] = alice.access.split('.') as [string, string, string]
    const tampered = `${h}.${p}.${s.slice(0, -3)}${s.endsWith('AAA') ? 'BBB' : 'AAA'}`
    const headers: Record<string, Record<string, string>> = {
      'junk token': { authorization: 'Bearer junk' },
      'tampered signature': { authorization: `Bearer ${tampered}` },
      'refresh token as access token': { authorization: `Bearer ${alice.refresh}` },
      'another scheme': { authorization: `Basic ${alice.access}` },
      'empty bearer': { authorization: 'Bearer ' }
    }
    for (const [what, h] of Object.entries(headers)) {
      const res = await api.get(`/posts/${id}`, h)
      t.equal(res.statusCode, 200, `${what}: 200`)
      t.notOk('liked' in res.json(), `${what}: no \`liked\``)
      t.equal(res.headers['www-authenticate'], undefined, `${what}: no challenge`)
    }
  })

  await t.test('404 and invalid ids', async (t) => {
    postNotFound(t, await api.get('/posts/999999'), 'anonymous, missing post')
    postNotFound(t, await api.get('/posts/999999', alice), 'logged in, missing post')
    postNotFound(t, await api.get('/posts/2147483647'), 'the largest id')
    const ids: Array<[string, string]> = [
      ['abc', 'params/id must be integer'],
      ['0', 'params/id must be >= 1'],
      ['-1', 'params/id must be >= 1'],
      ['1.5', 'params/id must be integer'],
      ['Infinity', 'params/id must be integer'],
      ['1e400', 'params/id must be integer'],
      ['99999999999999999999', 'params/id must be <= 2147483647'],
      ['2147483648', 'params/id must be <= 2147483647']
    ]
    for (const [bad, message] of ids) badRequest(t, await api.get(`/posts/${bad}`), message, `id ${bad}`)
    badRequest(t, await api.patch(alice, 'abc', { title: 'x' }), 'params/id must be integer', 'PATCH /posts/abc')
    badRequest(t, await api.del(alice, '1.5'), 'params/id must be integer', 'DELETE /posts/1.5')
  })
})

t.test('GET /posts and GET /users/{id}/posts: pages, newest first', async (t) => {
  const app = await build(t)
  const api = client(app)
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const quiet = await loginAs(app)
  // 25 posts straight through the domain module, alternating authors; ids ascend with creation.
  const ids: number[] = []
  for (let i = 0; i < 25; i++) {
    ids.push(await createPost(app.db, i % 2 === 0 ? alice.id : bob.id, { title: `Post ${i}`, content: `Content ${i}` }))
  }
  const newestFirst = [...ids].reverse()
  const aliceIds = newestFirst.filter((_, i) => (24 - i) % 2 === 0)
  const bobIds = newestFirst.filter((_, i) => (24 - i) % 2 === 1)
  t.equal(aliceIds.length, 13)
  t.equal(bobIds.length, 12)

  await t.test('defaults: skip 0, limit 20, newest first', async (t) => {
    const res = await api.get('/posts')
    t.equal(res.statusCode, 200)
    const page = res.json()
    t.same(Object.keys(page).sort(), PAGE_KEYS)
    t.same(page.items.map((p: { id: number }) => p.id), newestFirst.slice(0, 20), 'the 20 newest, id descending')
    t.match(page, { total: 25, skip: 0, limit: 20, has_more: true })
    for (const item of page.items) {
      t.same(Object.keys(item).sort(), POST_KEYS, `post ${item.id}: the Post fields, no \`liked\` anonymously`)
    }
    t.same(page.items[0].author, { id: alice.id, username: alice.username, avatar_url: null }, 'each with its author')
    t.same(page.items[1].author, { id: bob.id, username: bob.username, avatar_url: null })
  })

  await t.test('total, skip, limit and has_more across pages', async (t) => {
    const cases: Array<[string, number[], { total: number, skip: number, limit: number, has_more: boolean }]> = [
      ['skip=20', newestFirst.slice(20), { total: 25, skip: 20, limit: 20, has_more: false }],
      ['skip=15&limit=5', newestFirst.slice(15, 20), { total: 25, skip: 15, limit: 5, has_more: true }],
      ['skip=20&limit=5', newestFirst.slice(20, 25), { total: 25, skip: 20, limit: 5, has_more: false }],
      ['skip=24&limit=5', newestFirst.slice(24), { total: 25, skip: 24, limit: 5, has_more: false }],
      ['skip=25', [], { total: 25, skip: 25, limit: 20, has_more: false }],
      ['skip=1000', [], { total: 25, skip: 1000, limit: 20, has_more: false }],
      ['limit=1', newestFirst.slice(0, 1), { total: 25, skip: 0, limit: 1, has_more: true }],
      ['limit=25', newestFirst, { total: 25, skip: 0, limit: 25, has_more: false }],
      ['limit=100', newestFirst, { total: 25, skip: 0, limit: 100, has_more: false }],
      ['skip=0&limit=24', newestFirst.slice(0, 24), { total: 25, skip: 0, limit: 24, has_more: true }]
    ]
    for (const [query, expected, meta] of cases) {
      const res = await api.get(`/posts?${query}`)
      t.equal(res.statusCode, 200, `${query}: 200`)
      t.same(res.json().items.map((p: { id: number }) => p.id), expected, `${query}: the right posts`)
      const { next_cursor: next, ...rest } = res.json()
      t.same({ ...rest, items: undefined }, { ...meta, items: undefined }, `${query}: total, skip, limit, has_more`)
      t.equal(typeof next === 'string', meta.has_more, `${query}: a next_cursor exactly when more follow (null otherwise)`)
    }
    const walked: number[] = []
    for (let skip = 0, more = true; more; skip += 7) {
      const page = (await api.get(`/posts?skip=${skip}&limit=7`)).json()
      walked.push(...page.items.map((p: { id: number }) => p.id))
      more = page.has_more
    }
    t.same(walked, newestFirst, 'walking pages of 7 by has_more sees every post once, in order')
  })

  await t.test('out-of-range, non-integer and repeated parameters are a 400; unknown ones are ignored', async (t) => {
    const bad: Array<[string, string]> = [
      ['limit=0', 'querystring/limit must be >= 1'],
      ['limit=101', 'querystring/limit must be <= 100'],
      ['limit=-1', 'querystring/limit must be >= 1'],
      ['limit=x', 'querystring/limit must be integer'],
      ['limit=1.5', 'querystring/limit must be integer'],
      ['limit=', 'querystring/limit must be integer'],
      ['skip=-1', 'querystring/skip must be >= 0'],
      ['skip=x', 'querystring/skip must be integer'],
      ['skip=1.5', 'querystring/skip must be integer'],
      ['skip=Infinity', 'querystring/skip must be integer'],
      ['limit=1&limit=2', 'querystring/limit must be integer'],
      ['limit=2&limit=2', 'querystring/limit must be integer'],
      ['skip=0&skip=1', 'querystring/skip must be integer']
    ]
    for (const [query, message] of bad) {
      badRequest(t, await api.get(`/posts?${query}`), message, `/posts?${query}`)
      badRequest(t, await api.get(`/users/${alice.id}/posts?${query}`), message, `/users/{id}/posts?${query}`)
    }
    const plain = (await api.get('/posts')).json()
    const extra = await api.get('/posts?foo=bar&order=asc&author_id=1&offset=5')
    t.equal(extra.statusCode, 200, 'unknown parameters: 200')
    t.same(extra.json(), plain, 'unknown parameters change nothing')
    const max = await api.get('/posts?limit=100&skip=0')
    t.equal(max.statusCode, 200, 'limit=100 is accepted')
    t.equal(max.json().limit, 100)
  })

  await t.test('`liked` per post for a logged-in viewer', async (t) => {
    const likedByAlice = new Set([ids[0]!, ids[3]!, ids[24]!, ids[11]!])
    for (const id of likedByAlice) t.equal((await api.like(alice, id)).statusCode, 204)
    t.equal((await api.like(bob, ids[3]!)).statusCode, 204)

    const asAlice = (await api.get('/posts?limit=100', alice)).json()
    t.equal(asAlice.items.length, 25)
    for (const item of asAlice.items) {
      t.equal(item.liked, likedByAlice.has(item.id), `post ${item.id}: liked is ${likedByAlice.has(item.id)} for alice`)
      t.equal(item.like_count, item.id === ids[3] ? 2 : likedByAlice.has(item.id) ? 1 : 0, `post ${item.id}: like_count`)
    }
    const asBob = (await api.get('/posts?limit=100', bob)).json()
    t.same(asBob.items.filter((p: { liked: boolean }) => p.liked).map((p: { id: number }) => p.id), [ids[3]], 'bob likes only his one')
    const asQuiet = (await api.get('/posts?limit=100', quiet)).json()
    t.ok(asQuiet.items.every((p: { liked: boolean }) => p.liked === false), 'a viewer who liked nothing: all false')
    const anon = (await api.get('/posts?limit=100')).json()
    t.ok(anon.items.every((p: object) => !('liked' in p)), 'anonymous: no `liked` anywhere')
    const junk = await api.get('/posts?limit=100', { authorization: 'Bearer junk' })
    t.equal(junk.statusCode, 200, 'an invalid token on the list: 200')
    t.ok(junk.json().items.every((p: object) => !('liked' in p)), 'an invalid token is anonymous: no `liked`')

    const alicesAsAlice = (await api.get(`/users/${alice.id}/posts?limit=100`, alice)).json()
    for (const item of alicesAsAlice.items) {
      t.equal(item.liked, likedByAlice.has(item.id), `/users/{id}/posts, post ${item.id}: liked for alice`)
    }
    const bobsAsAnon = (await api.get(`/users/${bob.id}/posts`)).json()
    t.ok(bobsAsAnon.items.every((p: object) => !('liked' in p)), '/users/{id}/posts anonymous: no `liked`')
    const bobsJunk = (await api.get(`/users/${bob.id}/posts`, { authorization: 'Bearer junk' })).json()
    t.ok(bobsJunk.items.every((p: object) => !('liked' in p)), '/users/{id}/posts with an invalid token: no `liked`')
  })

  await t.test('GET /users/{id}/posts: only that user\'s posts, paginated', async (t) => {
    const all = await api.get(`/users/${alice.id}/posts`)
    t.equal(all.statusCode, 200)
    t.same(Object.keys(all.json()).sort(), PAGE_KEYS)
    t.same(all.json().items.map((p: { id: number }) => p.id), aliceIds, 'alice\'s 13 posts, newest first')
    t.ok(all.json().items.every((p: { author: { id: number } }) => p.author.id === alice.id), 'all by alice')
    t.match(all.json(), { total: 13, skip: 0, limit: 20, has_more: false })

    const page = (await api.get(`/users/${alice.id}/posts?skip=5&limit=5`)).json()
    t.same(page.items.map((p: { id: number }) => p.id), aliceIds.slice(5, 10))
    t.match(page, { total: 13, skip: 5, limit: 5, has_more: true })
    const last = (await api.get(`/users/${alice.id}/posts?skip=10&limit=5`)).json()
    t.same(last.items.map((p: { id: number }) => p.id), aliceIds.slice(10))
    t.match(last, { total: 13, skip: 10, limit: 5, has_more: false })

    const bobs = (await api.get(`/users/${bob.id}/posts?limit=100`)).json()
    t.same(bobs.items.map((p: { id: number }) => p.id), bobIds, 'bob\'s 12 posts')
    t.equal(bobs.total, 12, 'the total counts only that user\'s posts')

    const none = await api.get(`/users/${quiet.id}/posts`)
    t.equal(none.statusCode, 200, 'a user without posts: 200')
    t.same(none.json(), { items: [], total: 0, skip: 0, limit: 20, has_more: false, next_cursor: null })

    isError(t, await api.get('/users/999999/posts'), 404, 'User not found', 'unknown user')
    isError(t, await api.get('/users/999999/posts', alice), 404, 'User not found', 'unknown user, logged in')
    badRequest(t, await api.get('/users/abc/posts'), 'params/id must be integer', '/users/abc/posts')
    badRequest(t, await api.get('/users/0/posts'), 'params/id must be >= 1', '/users/0/posts')
  })
})

t.test('PATCH and DELETE /posts/{id}', async (t) => {
  const app = await build(t)
  const api = client(app)
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const mod = await loginAs(app, 'moderator')
  const admin = await loginAs(app, 'admin')
  const newPost = async (user: TestUser, title = 'Original title', content = 'Original content') =>
    (await api.create(user, { title, content })).json().id as number
  // Dates the post in the past, so a change to updated_at is visible whatever the clock's resolution.
  const backdate = (id: number) =>
    app.db.transaction((tx) => tx.q.update(tx.t.posts).set({ createdAt: '2020-01-01T00:00:00.000Z', updatedAt: '2020-01-01T00:00:00.000Z' }).where(eq(tx.t.posts.id, id)))

  await t.test('the owner: PATCH 200 (partial, updated_at moves), DELETE 204', async (t) => {
    const id = await newPost(alice)
    await backdate(id)
    const before = (await api.get(`/posts/${id}`)).json()

    const empty = await api.patch(alice, id, {})
    t.equal(empty.statusCode, 200, 'an empty PATCH is a 200')
    t.equal(empty.json().updated_at, before.updated_at, 'and changes nothing, updated_at included')
    const startedAt = new Date().toISOString()

    const title = await api.patch(alice, id, { title: 'New title' })
    t.equal(title.statusCode, 200)
    const changed = title.json()
    t.same(Object.keys(changed).sort(), POST_KEYS_WITH_LIKED, 'answers the Post')
    t.equal(changed.title, 'New title', 'the title changed')
    t.equal(changed.content, 'Original content', 'the content stayed')
    t.same(changed.author, { ...before.author, following: false }, 'the author stayed')
    t.equal(changed.slug, 'new-title', 'the slug follows the new title')
    t.equal(changed.created_at, before.created_at, 'created_at stayed')
    t.not(changed.updated_at, before.updated_at, 'updated_at changed')
    t.ok(isIsoUtc(changed.updated_at) && changed.updated_at >= startedAt, 'updated_at is the time of the change')
    t.same((await api.get(`/posts/${id}`, alice)).json(), changed, 'the change is stored')

    const content = await api.patch(alice, id, { content: 'New content' })
    t.equal(content.statusCode, 200)
    t.equal(content.json().title, 'New title', 'a content-only PATCH keeps the title')
    t.equal(content.json().content, 'New content')

    const both = await api.patch(alice, id, { title: 'Both', content: 'Changed' })
    t.match(both.json(), { title: 'Both', content: 'Changed' })

    const del = await api.del(alice, id)
    t.equal(del.statusCode, 204)
    t.equal(del.body, '', 'no body')
    postNotFound(t, await api.get(`/posts/${id}`), 'after deletion')
    postNotFound(t, await api.del(alice, id), 'deleting again')
    postNotFound(t, await api.patch(alice, id, { title: 'x' }), 'patching a deleted post')
  })

  await t.test('another user: 403 Not your post, and nothing changes', async (t) => {
    const id = await newPost(alice)
    const before = (await api.get(`/posts/${id}`)).json()
    notYourPost(t, await api.patch(bob, id, { title: 'Hijacked' }), 'bob patches alice\'s post')
    notYourPost(t, await api.patch(bob, id, { content: 'Hijacked' }), 'bob patches alice\'s content')
    notYourPost(t, await api.del(bob, id), 'bob deletes alice\'s post')
    t.same((await api.get(`/posts/${id}`)).json(), before, 're-read: the post is unchanged and still there')
  })

  await t.test('a moderator and an admin edit and delete others\' posts', async (t) => {
    for (const [who, actor] of [['moderator', mod], ['admin', admin]] as const) {
      const id = await newPost(alice)
      const res = await api.patch(actor, id, { title: `Edited by the ${who}` })
      t.equal(res.statusCode, 200, `${who}: PATCH 200 (post:edit_any)`)
      t.equal(res.json().title, `Edited by the ${who}`)
      t.same(res.json().author, { id: alice.id, username: alice.username, avatar_url: null, following: false }, `${who}: alice stays the author`)
      t.equal((await row(app, id))?.authorId, alice.id)
      const del = await api.del(actor, id)
      t.equal(del.statusCode, 204, `${who}: DELETE 204 (post:delete_any)`)
      postNotFound(t, await api.get(`/posts/${id}`), `${who}: the post is gone`)
    }
    postNotFound(t, await api.patch(mod, 999999, { title: 'x' }), 'a moderator on a missing post: 404')
  })

  await t.test('order of checks: 401, then inactive 403, then 404, then ownership 403', async (t) => {
    const id = await newPost(alice)
    const before = (await api.get(`/posts/${id}`)).json()
    the401(t, await api.patch(undefined, 999999, { title: 'x' }), 'anonymous PATCH on a missing post (not 404)')
    the401(t, await api.del(undefined, 999999), 'anonymous DELETE on a missing post (not 404)')
    the401(t, await api.patch(undefined, id, { title: 'x' }), 'anonymous PATCH on an existing post')
    the401(t, await api.del(undefined, id), 'anonymous DELETE on an existing post')
    postNotFound(t, await api.patch(bob, 999999, { title: 'x' }), 'a logged-in user PATCHing a missing post (not 403)')
    postNotFound(t, await api.del(bob, 999999), 'a logged-in user DELETEing a missing post (not 403)')

    const carol = await loginAs(app)
    const own = await newPost(carol)
    const ownBefore = (await api.get(`/posts/${own}`)).json()
    await setActive(app, carol.id, false)
    inactive(t, await api.patch(carol, own, { title: 'x' }), 'inactive owner PATCHing their own post')
    inactive(t, await api.del(carol, own), 'inactive owner DELETEing their own post')
    inactive(t, await api.patch(carol, 999999, { title: 'x' }), 'inactive user on a missing post (not 404)')
    inactive(t, await api.patch(carol, id, { title: 'x' }), 'inactive user on another\'s post (not Not your post)')
    t.same((await api.get(`/posts/${own}`)).json(), ownBefore, 'the inactive owner\'s post is unchanged and readable')
    t.same((await api.get(`/posts/${id}`)).json(), before, 'the other post is unchanged')
  })

  await t.test('PATCH bodies are strict and bounded', async (t) => {
    const id = await newPost(alice)
    const before = (await api.get(`/posts/${id}`)).json()
    const bad: Array<[string, Record<string, unknown>, string]> = [
      ['author_id', { title: 'x', author_id: bob.id }, 'body has an unknown property "author_id"'],
      ['user_id', { user_id: bob.id }, 'body has an unknown property "user_id"'],
      ['id', { id: 1 }, 'body has an unknown property "id"'],
      ['like_count', { like_count: 50 }, 'body has an unknown property "like_count"'],
      ['created_at', { created_at: '2000-01-01T00:00:00.000Z' }, 'body has an unknown property "created_at"'],
      ['updated_at', { updated_at: '2000-01-01T00:00:00.000Z' }, 'body has an unknown property "updated_at"'],
      ['empty title', { title: '' }, 'body/title must NOT have fewer than 1 characters'],
      ['title of only spaces', { title: '   ' }, 'body/title must match pattern "\\S"'],
      ['title of 201 characters', { title: 't'.repeat(201) }, 'body/title must NOT have more than 200 characters'],
      ['empty content', { content: '' }, 'body/content must NOT have fewer than 1 characters'],
      ['content of 50001 characters', { content: 'c'.repeat(50_001) }, 'body/content must NOT have more than 50000 characters'],
      ['null title', { title: null }, 'body/title must be string']
    ]
    for (const [what, payload, message] of bad) badRequest(t, await api.patch(alice, id, payload), message, `PATCH with ${what}`)
    const proto = await app.inject({
      method: 'PATCH', url: `/posts/${id}`, headers: { ...alice.auth, 'content-type': 'application/json' },
      payload: `{"title":"x","__proto__":{"author_id":${bob.id}}}`
    })
    badRequest(t, proto, BAD_JSON, 'PATCH with a raw "__proto__" key')
    t.same((await api.get(`/posts/${id}`)).json(), before, 'nothing changed')
    const max = await api.patch(alice, id, { title: 'T'.repeat(200), content: 'C'.repeat(50_000) })
    t.equal(max.statusCode, 200, 'the largest title and content are accepted')
  })

  await t.test('deleting a post removes its likes', async (t) => {
    const id = await newPost(alice)
    for (const u of [bob, mod]) t.equal((await api.like(u, id)).statusCode, 204)
    t.equal(await likeRows(app, { postId: id }), 2)
    t.equal((await api.del(alice, id)).statusCode, 204)
    t.equal(await likeRows(app, { postId: id }), 0, 'no like of the deleted post is left')
  })
})

t.test('DELETE /users/me removes the user\'s posts and likes, and the counts follow', async (t) => {
  const app = await build(t)
  const api = client(app)
  const dave = await loginAs(app)
  const erin = await loginAs(app)
  const frank = await loginAs(app)
  const daves = [
    (await api.create(dave, { title: 'Dave 1', content: 'x' })).json().id as number,
    (await api.create(dave, { title: 'Dave 2', content: 'x' })).json().id as number
  ]
  const erins = (await api.create(erin, { title: 'Erin 1', content: 'x' })).json().id as number
  const franks = (await api.create(frank, { title: 'Frank 1', content: 'x' })).json().id as number
  for (const [u, p] of [[dave, erins], [frank, erins], [dave, franks], [erin, daves[0]!], [frank, daves[1]!]] as const) {
    t.equal((await api.like(u, p)).statusCode, 204)
  }
  t.equal((await api.get(`/posts/${erins}`)).json().like_count, 2, 'before: erin\'s post has 2 likes')
  t.equal((await api.get(`/posts/${franks}`)).json().like_count, 1, 'before: frank\'s post has 1 like')

  const del = await app.inject({ method: 'DELETE', url: '/users/me', headers: dave.auth, payload: { password: PASSWORD } })
  t.equal(del.statusCode, 204)

  for (const id of daves) postNotFound(t, await api.get(`/posts/${id}`), `dave's post ${id} is gone`)
  t.equal(await countRows(app, app.db.t.posts, eq(app.db.t.posts.authorId, dave.id)), 0, 'no post of dave is stored')
  t.equal(await likeRows(app, { userId: dave.id }), 0, 'no like by dave is stored')
  for (const id of daves) t.equal(await likeRows(app, { postId: id }), 0, `no like of dave's post ${id} is stored`)
  t.equal(await countRows(app, app.db.t.users, eq(app.db.t.users.id, dave.id)), 0, 'dave is gone')

  const erinsNow = (await api.get(`/posts/${erins}`, erin)).json()
  t.equal(erinsNow.like_count, 1, 'erin\'s post dropped from 2 to 1 like')
  t.equal(erinsNow.like_count, await likeRows(app, { postId: erins }), 'and matches the likes table')
  const franksNow = (await api.get(`/posts/${franks}`)).json()
  t.equal(franksNow.like_count, 0, 'frank\'s post dropped from 1 to 0')
  t.equal(franksNow.like_count, await likeRows(app, { postId: franks }))

  const list = (await api.get('/posts')).json()
  t.same(list.items.map((p: { id: number }) => p.id), [franks, erins], 'the list no longer shows dave\'s posts')
  t.equal(list.total, 2)
  isError(t, await api.get(`/users/${dave.id}/posts`), 404, 'User not found', 'dave\'s posts: his user is gone')
  the401(t, await api.create(dave, { title: 'Ghost', content: 'x' }), 'dave\'s token no longer writes')
})

t.test('someone else\'s post: the 403 carries its code, NOT_OWNER, for edits and deletions alike', async (t) => {
  const app = await build(t)
  const author = await loginAs(app)
  const other = await loginAs(app)
  const id = (await app.inject({ method: 'POST', url: '/posts', headers: author.auth, payload: { title: 'mine', content: 'mine' } })).json().id
  for (const method of ['PATCH', 'DELETE'] as const) {
    const res = await app.inject({ method, url: `/posts/${id}`, headers: other.auth, ...(method === 'PATCH' ? { payload: { title: 'theirs' } } : {}) })
    isError(t, res, 403, 'Not your post', method)
    t.equal(res.json().code, 'NOT_OWNER', `${method}: code NOT_OWNER`)
  }
  const post = (await app.inject({ url: `/posts/${id}` })).json()
  t.equal(post.title, 'mine', 'the post is unchanged')
})
