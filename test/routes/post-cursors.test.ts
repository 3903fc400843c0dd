// Cursor pagination of the lists of posts (GET /posts, GET /users/{id}/posts): an opaque `cursor` in,
// `next_cursor` out, every post once in order however the list changes between pages, and a cursor the
// server did not issue for that very list refused with a 400 naming the parameter.
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { createCursors } from '../../src/domain/pagination.js'
import { createPost, deletePost, likePost } from '../../src/domain/posts.js'
import { badRequest, build, loginAs, TEST_SECRET, type TestUser } from '../helper.js'

interface PageBody {
  items: Array<{ id: number, liked?: boolean, author: { id: number } }>
  total: number
  skip: number
  limit: number
  has_more: boolean
  next_cursor: string | null
}

const PAGE_KEYS = ['has_more', 'items', 'limit', 'next_cursor', 'skip', 'total']

async function get (app: App, url: string, who?: TestUser): Promise<LightMyRequestResponse> {
  return await app.inject({ url, headers: who?.auth ?? {} })
}

async function page (t: Test, app: App, url: string, who?: TestUser): Promise<PageBody> {
  const res = await get(app, url, who)
  t.equal(res.statusCode, 200, `${url}: 200`)
  return res.json()
}

const ids = (body: PageBody) => body.items.map((p) => p.id)
const withCursor = (url: string, cursor: string) => `${url}${url.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}`

/** Walks a list by cursor from its first page, `between` running after each page; the pages seen. */
async function walk (t: Test, app: App, url: string, who?: TestUser, between?: (n: number, body: PageBody) => Promise<void>) {
  const pages: PageBody[] = []
  let body = await page(t, app, url, who)
  pages.push(body)
  while (body.next_cursor !== null) {
    t.equal(body.has_more, true, 'a next_cursor only while more follow')
    await between?.(pages.length, body)
    body = await page(t, app, withCursor(url, body.next_cursor), who)
    pages.push(body)
    if (pages.length > 100) throw new Error('the walk does not end')
  }
  t.equal(body.has_more, false, 'the last page: has_more false')
  t.equal(body.next_cursor, null, 'the last page: next_cursor null')
  return pages
}

const NOT_ISSUED = 'querystring/cursor is not a cursor this list issued'

interface World { app: App, alice: TestUser, bob: TestUser, carol: TestUser, all: number[], alices: number[] }

/** 23 posts (alice writes every third), newest first in `all` and `alices`. */
async function world (t: Test): Promise<World> {
  const app = await build(t)
  const [alice, bob, carol] = [await loginAs(app), await loginAs(app), await loginAs(app)]
  const created: number[] = []
  for (let i = 0; i < 23; i++) {
    created.push(await createPost(app.db, i % 3 === 0 ? alice.id : bob.id, { title: `post ${i}`, content: `content ${i}` }))
  }
  const all = created.reverse()
  const alices = all.filter((_, i) => (22 - i) % 3 === 0)
  return { app, alice, bob, carol, all, alices }
}

t.test('walking by cursor: every post once, newest first, on both lists', async (t) => {
  const { app, alice, all, alices } = await world(t)
  for (const [url, expected] of [['/posts?limit=5', all], [`/users/${alice.id}/posts?limit=3`, alices]] as const) {
    const pages = await walk(t, app, url)
    t.same(pages.flatMap(ids), expected, `${url}: every post once, in order`)
    const limit = Number(url.split('limit=')[1])
    t.same(pages.map((p) => p.items.length), [...Array<number>(Math.ceil(expected.length / limit) - 1).fill(limit), expected.length % limit || limit],
      `${url}: full pages, then the rest`)
    for (const [n, p] of pages.entries()) {
      t.same(Object.keys(p).sort(), PAGE_KEYS, `${url} page ${n}: the list fields and next_cursor`)
      t.match(p, { total: expected.length, skip: 0, limit }, `${url} page ${n}: total of the whole list, skip 0, the limit`)
      if (p.next_cursor !== null) t.ok(p.next_cursor.length <= 64, 'a cursor fits the documented bound')
    }
  }

  // The last page by offset and by cursor agree, and a full last page answers null too.
  const exact = await page(t, app, '/posts?limit=23')
  t.same(ids(exact), all)
  t.match(exact, { has_more: false, next_cursor: null }, 'a page that ends the list exactly: next_cursor null')
  const byOffset = await page(t, app, '/posts?limit=5&skip=5')
  t.same(ids(byOffset), all.slice(5, 10), 'an offset page answers a next_cursor too')
  t.same(ids(await page(t, app, withCursor('/posts?limit=5', byOffset.next_cursor ?? ''))), all.slice(10, 15),
    'and it continues right after that page')
  t.same(ids(await page(t, app, withCursor('/posts?limit=20&skip=0', byOffset.next_cursor ?? ''))), all.slice(10),
    'skip=0 beside a cursor is allowed; the limit may change between pages')
  t.match(await page(t, app, '/posts?skip=100'), { items: [], has_more: false, next_cursor: null }, 'past the end: no cursor')
})

t.test('posts created and deleted between pages: the rest of the walk is what was there, once each', async (t) => {
  const { app, alice, bob, all } = await world(t)
  const deleted = new Set<number>()
  const pages = await walk(t, app, '/posts?limit=4', undefined, async (n, body) => {
    if (n === 1) {
      // New posts are newer than every cursor: they appear on a first page, never later in this walk.
      for (let i = 0; i < 3; i++) await createPost(app.db, bob.id, { title: `new ${i}`, content: 'new' })
      // Posts not yet seen go; so does the very post the cursor names.
      for (const id of [all[9]!, all[10]!, all[20]!, body.items[3]!.id]) {
        await deletePost(app.db, id)
        deleted.add(id)
      }
    }
  })
  const seen = pages.flatMap(ids)
  t.same(seen, all.filter((id, i) => i < 4 || !deleted.has(id)), 'every remaining post once, in order; none twice, none skipped')
  t.equal(new Set(seen).size, seen.length, 'no post twice')
  t.equal(pages.at(-1)!.total, all.length + 3 - deleted.size, 'the total follows the table')

  const aliceNow = await walk(t, app, `/users/${alice.id}/posts?limit=2`)
  t.same(aliceNow.flatMap(ids), all.filter((id, i) => (22 - i) % 3 === 0 && !deleted.has(id)), 'an author\'s walk after the changes')
})

t.test('liked with a cursor is the viewer\'s, on both lists', async (t) => {
  const { app, alice, bob, carol, all, alices } = await world(t)
  const carolLikes = new Set([all[0]!, all[7]!, all[8]!, all[15]!, all[22]!, alices[4]!])
  for (const id of carolLikes) await likePost(app.db, carol.id, id)
  await likePost(app.db, alice.id, all[7]!)
  for (const [url, expected] of [['/posts?limit=6', all], [`/users/${alice.id}/posts?limit=2`, alices]] as const) {
    const asCarol = await walk(t, app, url, carol)
    const items = asCarol.flatMap((p) => p.items)
    t.same(items.map((p) => p.id), expected, `${url}: the walk, logged in`)
    t.same(items.filter((p) => p.liked === true).map((p) => p.id), expected.filter((id) => carolLikes.has(id)),
      `${url}: liked exactly where carol likes (not alice, not the author)`)
    t.ok(items.every((p) => typeof p.liked === 'boolean'), `${url}: liked on every post of every page`)
    const anonymous = (await walk(t, app, url)).flatMap((p) => p.items)
    t.ok(anonymous.every((p) => !('liked' in p)), `${url}: anonymously, no liked on any page`)
  }
  const asBob = (await walk(t, app, '/posts?limit=6', bob)).flatMap((p) => p.items)
  t.ok(asBob.every((p) => p.liked === false), 'a viewer who likes nothing: false on every page')
})

t.test('a cursor the server did not issue for this list is a 400 naming querystring/cursor', async (t) => {
  const { app, alice, bob } = await world(t)
  const first = await page(t, app, '/posts?limit=5')
  const good = first.next_cursor!
  const [payload, tag] = good.split('.') as [string, string]
  const aliceCursor = (await page(t, app, `/users/${alice.id}/posts?limit=2`)).next_cursor!
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  // The last character of a 16-byte tag carries 2 bits of it and 4 unused ones: changing only those
  // decodes to the same bytes, but it is still not the cursor the server issued.
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const lastBits = ALPHABET[ALPHABET.indexOf(tag.at(-1)!) ^ 1]!
  const otherKey = createCursors(`${TEST_SECRET}-another-server`)

  const refused: Array<[string, string]> = [
    ['the tag edited', `${payload}.${flip(tag, 3)}`],
    ['the payload edited (another id, the same tag)', `${Buffer.from('1:3').toString('base64url')}.${tag}`],
    ['the payload edited by one character', `${flip(payload, 1)}.${tag}`],
    ['the tag\'s unused last bits changed', `${payload}.${tag.slice(0, -1)}${lastBits}`],
    ['the tag cut short', `${payload}.${tag.slice(0, -2)}`],
    ['the tag one character short', good.slice(0, -1)],
    ['the tag gone', `${payload}.`],
    ['the payload gone', `.${tag}`],
    ['no dot', 'abcdef'],
    ['two dots', `${payload}.${tag}.x`],
    ['garbage', 'not.a-cursor'],
    ['base64 padding', `${payload}=.${tag}`],
    ['a cursor keyed with another secret', otherKey.issue('posts', first.items[4]!.id)],
    ['an unsigned id', '1234'],
    ['a JWT in its place', alice.access]
  ]
  for (const [what, cursor] of refused) {
    const res = await get(app, withCursor('/posts', cursor))
    t.equal(res.statusCode, 400, `${what}: 400`)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', message: /^querystring\/cursor / }, `${what}: the error shape, naming the parameter`)
    t.ok(Object.keys(res.json()).every((k) => ['code', 'error', 'message', 'statusCode'].includes(k)), `${what}: nothing but the error shape`)
  }
  badRequest(t, await get(app, withCursor('/posts', `${payload}.${flip(tag, 3)}`)), NOT_ISSUED, 'a forged cursor: the exact message')
  t.equal((await get(app, withCursor('/posts', `${payload}.${flip(tag, 3)}`))).json().code, 'INVALID_CURSOR', 'a machine-readable code')
  badRequest(t, await get(app, withCursor('/posts', 'a'.repeat(30) + '.' + 'b'.repeat(34))), 'querystring/cursor must NOT have more than 64 characters', 'too long')
  badRequest(t, await get(app, withCursor('/posts', 'abc!.def')), 'querystring/cursor must match pattern "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"', 'characters outside base64url')
  badRequest(t, await get(app, '/posts?cursor='), 'querystring/cursor must NOT have fewer than 1 characters', 'empty')

  // A cursor works only on the list that issued it.
  badRequest(t, await get(app, withCursor('/posts', aliceCursor)), NOT_ISSUED, 'an author\'s cursor on /posts')
  badRequest(t, await get(app, withCursor(`/users/${bob.id}/posts`, aliceCursor)), NOT_ISSUED, 'alice\'s cursor on bob\'s list')
  badRequest(t, await get(app, withCursor(`/users/${alice.id}/posts`, good)), NOT_ISSUED, 'a /posts cursor on an author\'s list')
  t.equal((await get(app, withCursor(`/users/${alice.id}/posts`, aliceCursor))).statusCode, 200, 'and on its own list it works')

  badRequest(t, await get(app, `/posts?cursor=${good}&cursor=${good}`), 'querystring/cursor must be string', 'a repeated cursor')
  badRequest(t, await get(app, `/users/${alice.id}/posts?cursor=${aliceCursor}&cursor=${aliceCursor}`), 'querystring/cursor must be string', 'repeated, author list')
  const withSkip = await get(app, `/posts?cursor=${good}&skip=1`)
  badRequest(t, withSkip, 'querystring/cursor cannot be combined with querystring/skip above 0', 'a cursor with skip > 0')
  t.equal(withSkip.json().code, 'CURSOR_WITH_SKIP')
  badRequest(t, await get(app, `/users/${alice.id}/posts?skip=2&cursor=${aliceCursor}`), 'querystring/cursor cannot be combined with querystring/skip above 0', 'author list, cursor with skip')
  // Refused before anything else: a forged cursor with a token is the same 400.
  badRequest(t, await get(app, withCursor('/posts', `${payload}.${flip(tag, 3)}`), bob), NOT_ISSUED, 'logged in, forged cursor')
})

t.test('the cursor codec: round trip, list binding, and the bound on ids', async (t) => {
  const cursors = createCursors(TEST_SECRET)
  for (const id of [1, 42, 2_147_483_647]) t.equal(cursors.read('posts', cursors.issue('posts', id)), id, `id ${id} round-trips`)
  t.throws(() => cursors.read('users/1/posts', cursors.issue('posts', 5)), { code: 'INVALID_CURSOR', message: NOT_ISSUED })
  t.throws(() => cursors.read('posts', cursors.issue('posts', 2_147_483_648)), { code: 'INVALID_CURSOR', message: NOT_ISSUED }, 'an id beyond the id range, even signed')
  t.throws(() => cursors.read('posts', cursors.issue('posts', 0)), { code: 'INVALID_CURSOR', message: NOT_ISSUED }, 'id 0, even signed')
  t.not(cursors.issue('posts', 5), createCursors(`${TEST_SECRET}x`).issue('posts', 5), 'the key follows JWT_SECRET')
  t.ok(cursors.issue('posts', 2_147_483_647).length <= 64, 'the longest cursor fits the schema bound')
})
