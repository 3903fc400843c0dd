import t from 'tap'
import type { App } from '../../src/app.js'
import {
  build, countRows, inactive, isError, loginAs, postNotFound, setActive, the401, unknownProperty, type TestUser
} from '../helper.js'

const comment = (app: App, postId: number | string, user: TestUser | undefined, payload: unknown = { body: 'Nice' }) =>
  app.inject({ method: 'POST', url: `/posts/${postId}/comments`, headers: user?.auth ?? {}, payload: payload as object })
const remove = (app: App, postId: number | string, commentId: number | string, user?: TestUser) =>
  app.inject({ method: 'DELETE', url: `/posts/${postId}/comments/${commentId}`, headers: user?.auth ?? {} })
const list = (app: App, postId: number | string, query = '', user?: TestUser) =>
  app.inject({ url: `/posts/${postId}/comments${query}`, headers: user?.auth ?? {} })
const newPost = async (app: App, user: TestUser) =>
  (await app.inject({ method: 'POST', url: '/posts', headers: user.auth, payload: { title: 'On comments', content: 'x' } })).json().id as number

t.test('comments: write, list both ways, by cursor', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const bob = await loginAs(app)
  const post = await newPost(app, ada)

  const res = await comment(app, post, bob, { body: 'First!' })
  t.equal(res.statusCode, 201, 'written: 201')
  const first = res.json()
  t.match(first, { post_id: post, body: 'First!', author: { id: bob.id, username: bob.username, avatar_url: null, following: false } })
  t.equal(first.created_at, first.updated_at)
  const ids = [first.id as number]
  for (let i = 2; i <= 5; i++) ids.push((await comment(app, post, i % 2 === 0 ? ada : bob, { body: `comment ${i}` })).json().id)

  const newest = (await list(app, post)).json()
  t.same(newest.items.map((c: { id: number }) => c.id), [...ids].reverse(), 'newest first by default')
  t.match(newest, { total: 5, skip: 0, limit: 20, has_more: false, next_cursor: null })
  t.notOk('following' in newest.items[0].author, 'no following without a token')
  t.same((await list(app, post, '?order=oldest')).json().items.map((c: { id: number }) => c.id), ids, 'oldest first')

  for (const order of ['newest', 'oldest']) {
    const seen: number[] = []
    let cursor: string | null = null
    do {
      const body: { items: { id: number }[], next_cursor: string | null, total: number } =
        (await list(app, post, `?order=${order}&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`)).json()
      t.equal(body.total, 5, `${order}: the total on every page`)
      seen.push(...body.items.map((c) => c.id))
      cursor = body.next_cursor
    } while (cursor !== null)
    t.same(seen, order === 'newest' ? [...ids].reverse() : ids, `${order}: the cursor walks the whole list once`)
  }
  const page = (await list(app, post, '?order=newest&limit=2')).json()
  isError(t, await list(app, post, `?order=oldest&limit=2&cursor=${page.next_cursor}`), 400, /cursor/, 'a cursor of the other order')
  const other = await newPost(app, ada)
  isError(t, await list(app, other, `?limit=2&cursor=${page.next_cursor}`), 400, /cursor/, 'a cursor of another post\'s comments')
  isError(t, await list(app, post, `?skip=1&cursor=${page.next_cursor}`), 400, /cursor/, 'a cursor with skip')
  t.same((await list(app, post, '?skip=4')).json().items.map((c: { id: number }) => c.id), [ids[0]], 'by offset')

  await app.inject({ method: 'PUT', url: `/users/${bob.id}/follow`, headers: ada.auth })
  const seenByAda = (await list(app, post, '', ada)).json().items as { author: { id: number, following: boolean } }[]
  t.ok(seenByAda.every((c) => c.author.following === (c.author.id === bob.id)), 'with a token: whether the caller follows each author')

  t.match((await list(app, other)).json(), { items: [], total: 0 }, 'a post without comments: an empty page')
  postNotFound(t, await list(app, 999999), 'the comments of no post')
  for (const [query, what] of [['?order=random', 'an unknown order'], ['?limit=101', 'limit 101'], ['?cursor=nope', 'a malformed cursor']]) {
    t.equal((await list(app, post, query)).statusCode, 400, `${what}: 400`)
  }
  t.equal((await list(app, 'abc')).statusCode, 400, 'a post id that is not a number: 400')
})

t.test('writing a comment: who may, and what is refused', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const idle = await loginAs(app)
  const post = await newPost(app, ada)
  const count = () => countRows(app, app.db.t.comments)

  the401(t, await comment(app, post, undefined), 'no token')
  await setActive(app, idle.id, false)
  inactive(t, await comment(app, post, idle), 'an inactive user')
  postNotFound(t, await comment(app, 999999, ada), 'no such post')
  for (const [payload, message, what] of [
    [{}, /body/, 'no body field'],
    [{ body: '' }, /body/, 'an empty body'],
    [{ body: '   \n ' }, /body/, 'white space only'],
    [{ body: 'x'.repeat(5001) }, /body/, '5001 characters'],
    [{ body: 42 }, /body/, 'not a string'],
    [{ body: 'ok', author_id: 1 }, unknownProperty({ body: 'ok', author_id: 1 }, ['body']), 'an unknown field']
  ] as const) {
    isError(t, await comment(app, post, ada, payload), 400, message, what)
  }
  t.equal(await count(), 0, 'nothing was written')
  t.equal((await comment(app, post, ada, { body: 'x'.repeat(5000) })).statusCode, 201, '5000 characters: written')
})

t.test('deleting a comment: 404 for the post, then the comment, then 403; moderators may', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const bob = await loginAs(app)
  const mod = await loginAs(app, 'moderator')
  const post = await newPost(app, ada)
  const other = await newPost(app, ada)
  const bobs = (await comment(app, post, bob)).json().id as number
  const bobs2 = (await comment(app, post, bob)).json().id as number
  const onOther = (await comment(app, other, bob)).json().id as number

  the401(t, await remove(app, post, bobs), 'no token')
  postNotFound(t, await remove(app, 999999, bobs, bob), 'no such post')
  isError(t, await remove(app, post, 999999, bob), 404, 'Comment not found', 'no such comment')
  isError(t, await remove(app, post, onOther, bob), 404, 'Comment not found', 'a comment of another post, named under this one')
  isError(t, await remove(app, post, bobs, ada), 403, 'Not your comment', 'the post\'s author is not the comment\'s')
  t.equal((await remove(app, post, 'x', bob)).statusCode, 400, 'a comment id that is not a number')
  t.equal(await countRows(app, app.db.t.comments), 3, 'nothing deleted so far')

  const gone = await remove(app, post, bobs, bob)
  t.equal(gone.statusCode, 204, 'its author may: 204')
  t.equal(gone.body, '')
  isError(t, await remove(app, post, bobs, bob), 404, 'Comment not found', 'deleting it again: 404')
  t.equal((await remove(app, post, bobs2, mod)).statusCode, 204, 'a moderator (comment:delete_any) may delete anyone\'s')
  await setActive(app, bob.id, false)
  inactive(t, await remove(app, other, onOther, bob), 'an inactive author may not')

  // A post's comments go with it.
  t.equal((await app.inject({ method: 'DELETE', url: `/posts/${other}`, headers: ada.auth })).statusCode, 204)
  t.equal(await countRows(app, app.db.t.comments), 0, 'the deleted post\'s comments are gone')
  postNotFound(t, await list(app, other), 'and its list is a 404')
})
