import t from 'tap'
import type { App } from '../../src/app.js'
import { build, countRows, inactive, isError, loginAs, setActive, the401, type TestUser } from '../helper.js'

const follow = (app: App, id: number | string, user?: TestUser) =>
  app.inject({ method: 'PUT', url: `/users/${id}/follow`, headers: user?.auth ?? {} })
const unfollow = (app: App, id: number | string, user?: TestUser) =>
  app.inject({ method: 'DELETE', url: `/users/${id}/follow`, headers: user?.auth ?? {} })
const feed = async (app: App, user: TestUser, query = '') => {
  const res = await app.inject({ url: `/feed${query}`, headers: user.auth })
  if (res.statusCode !== 200) throw new Error(`GET /feed${query}: ${res.statusCode} ${res.body}`)
  return res.json()
}
const write = async (app: App, user: TestUser, title: string) =>
  (await app.inject({ method: 'POST', url: '/posts', headers: user.auth, payload: { title, content: 'x' } })).json().id as number
const ids = (body: { items: { id: number }[] }) => body.items.map((p) => p.id)

t.test('following: idempotent both ways, never oneself, only users that exist', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const bob = await loginAs(app)
  const rows = () => countRows(app, app.db.t.follows)

  the401(t, await follow(app, bob.id), 'no token')
  const res = await follow(app, bob.id, ada)
  t.equal(res.statusCode, 204, 'follow: 204')
  t.equal(res.body, '')
  t.equal((await follow(app, bob.id, ada)).statusCode, 204, 'again: 204')
  t.equal(await rows(), 1, 'one row')
  t.equal((await app.inject({ url: `/users/${bob.id}`, headers: ada.auth })).json().following, true, 'the profile says so to the follower')
  t.equal((await app.inject({ url: `/users/${ada.id}`, headers: bob.auth })).json().following, false, 'and not the other way round')
  t.notOk('following' in (await app.inject({ url: `/users/${bob.id}` })).json(), 'nothing about it without a token')

  isError(t, await follow(app, ada.id, ada), 400, 'You cannot follow yourself', 'oneself', 'CANNOT_FOLLOW_SELF')
  isError(t, await follow(app, 999999, ada), 404, 'User not found', 'no such user')
  isError(t, await unfollow(app, 999999, ada), 404, 'User not found', 'unfollowing no such user')
  t.equal((await follow(app, 'x', ada)).statusCode, 400, 'an id that is not a number')
  t.equal(await rows(), 1, 'nothing else written')

  t.equal((await unfollow(app, bob.id, ada)).statusCode, 204, 'unfollow: 204')
  t.equal((await unfollow(app, bob.id, ada)).statusCode, 204, 'again: 204')
  t.equal(await rows(), 0)
  t.equal((await unfollow(app, ada.id, ada)).statusCode, 204, 'unfollowing oneself: nothing to undo, 204')

  await setActive(app, ada.id, false)
  inactive(t, await follow(app, bob.id, ada), 'an inactive user may not follow')

  // Many follows at once: one row.
  const burst = await Promise.all(Array.from({ length: 6 }, () => follow(app, ada.id, bob)))
  t.same(burst.map((r) => r.statusCode), Array(6).fill(204))
  t.equal(await rows(), 1, 'one row after a burst')
  // A deleted user's follows go with them, both ways.
  await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth, payload: { password: 'a perfectly fine passphrase' } })
  t.equal(await rows(), 0, 'the cascade removed them')
})

t.test('GET /feed: the followed authors\' posts, newest first, by cursor too', async (t) => {
  const app = await build(t)
  const me = await loginAs(app)
  const ann = await loginAs(app)
  const ben = await loginAs(app)
  const cid = await loginAs(app)
  the401(t, await app.inject({ url: '/feed' }), 'no token')
  t.match(await feed(app, me), { items: [], total: 0, has_more: false, next_cursor: null }, 'following nobody: an empty feed')

  const posts: Record<string, number[]> = { ann: [], ben: [], cid: [], me: [] }
  for (let i = 0; i < 3; i++) {
    posts.ann!.push(await write(app, ann, `ann ${i}`))
    posts.ben!.push(await write(app, ben, `ben ${i}`))
    posts.cid!.push(await write(app, cid, `cid ${i}`))
    posts.me!.push(await write(app, me, `me ${i}`))
  }
  await follow(app, ann.id, me)
  await follow(app, ben.id, me)
  const expected = [...posts.ann!, ...posts.ben!].sort((a, b) => b - a)
  const body = await feed(app, me)
  t.same(ids(body), expected, 'both authors\' posts, newest first; not cid\'s, not mine')
  t.equal(body.total, 6)
  t.ok(body.items.every((p: { author: { following: boolean } }) => p.author.following), 'every author is one the caller follows')

  const seen: number[] = []
  let cursor: string | null = null
  do {
    const page = await feed(app, me, `?limit=4${cursor === null ? '' : `&cursor=${cursor}`}`)
    seen.push(...ids(page))
    cursor = page.next_cursor
  } while (cursor !== null)
  t.same(seen, expected, 'walked by cursor')
  t.same(ids(await feed(app, me, '?skip=4&limit=4')), expected.slice(4), 'by offset')

  const mine = await feed(app, me, '?limit=2')
  const hers = await app.inject({ url: `/feed?limit=2&cursor=${mine.next_cursor}`, headers: ann.auth })
  isError(t, hers, 400, /cursor/, 'one user\'s feed cursor does not continue another\'s')

  await unfollow(app, ann.id, me)
  t.same(ids(await feed(app, me)), [...posts.ben!].reverse(), 'after an unfollow, that author\'s posts leave the feed at once')
  await app.inject({ method: 'DELETE', url: `/posts/${posts.ben![2]}`, headers: ben.auth })
  t.same(ids(await feed(app, me)), [posts.ben![1], posts.ben![0]], 'a deleted post leaves it too')
  t.equal((await app.inject({ url: '/feed?limit=0', headers: me.auth })).statusCode, 400, 'limit 0: 400')
})
