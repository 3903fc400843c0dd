// Tests written for mutants that survived `npm run mutate` (README, "Mutation testing"): each asserts
// the behaviour a one-line bug changed without any test noticing. (test/security/mutants.test.ts holds
// the ones found by hand before StrykerJS ran.)
import t from 'tap'
import { MemoryLoginThrottle } from '../../src/domain/login-throttle.js'
import { build, isError, loginAs } from '../helper.js'

t.test('someone else\'s post: the 403 carries its code, NOT_OWNER, for edits and deletions alike', async (t) => {
  const app = await build(t)
  const author = await loginAs(app)
  const other = await loginAs(app)
  const id = (await app.inject({ method: 'POST', url: '/posts', headers: author.auth, payload: { title: 'mine', content: 'mine' } })).json().id
  for (const method of ['PATCH', 'DELETE'] as const) {
    const res = await app.inject({ method, url: `/posts/${id}`, headers: other.auth, ...(method === 'PATCH' ? { payload: { title: 'theirs' } } : {}) })
    isError(t, res, 403, 'Forbidden', 'Not your post', method)
    t.equal(res.json().code, 'NOT_OWNER', `${method}: code NOT_OWNER`)
  }
  const post = (await app.inject({ url: `/posts/${id}` })).json()
  t.equal(post.title, 'mine', 'the post is unchanged')
})

t.test('an admin PATCH that changes nothing writes nothing: no update, no audit entry', async (t) => {
  const app = await build(t)
  const admin = await loginAs(app, 'admin')
  const user = await loginAs(app, 'moderator')
  const row = async () => (await app.inject({ url: '/admin/users?limit=100', headers: admin.auth })).json().items
    .find((u: { id: number }) => u.id === user.id)
  const before = await row()
  await new Promise((resolve) => setTimeout(resolve, 1100)) // updated_at has whole seconds on SQLite
  const res = await app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: admin.auth, payload: { role: 'moderator', is_active: true } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), before, 'the answer is the user as they were')
  t.equal((await row()).updated_at, before.updated_at, 'updated_at did not move')
  t.equal((await app.inject({ url: '/admin/audit', headers: admin.auth })).json().total, 0, 'and the audit log is empty')
  t.equal((await app.inject({ url: '/users/me', headers: user.auth })).statusCode, 200, 'the user\'s session lives on')
})

t.test('the in-memory login throttle: expired pairs go first, wherever they are in the map', async (t) => {
  const throttle = new MemoryLoginThrottle(1, 60_000, 2)
  await throttle.recordFailure('live', 'c', 30_000)
  await throttle.recordFailure('stale', 'c', 0)
  await throttle.recordFailure('new', 'c', 70_000)
  t.equal(await throttle.retryAfter('live', 'c', 70_000), 20, 'the first pair in the map is live: kept')
  t.equal(await throttle.retryAfter('new', 'c', 70_000), 60)
})

t.test('the in-memory login throttle keeps at most `limit` failures a pair, however many arrive', async (t) => {
  const throttle = new MemoryLoginThrottle(3, 60_000, 100)
  for (let i = 0; i < 50; i++) await throttle.recordFailure('sprayed', 'c', 1_000 + i)
  // White-box: the bound is on memory, which no answer shows; the answers stay those of the newest three.
  const failures = Reflect.get(throttle, 'failures') as Map<string, number[]>
  t.same(failures.get('sprayed\nc'), [1_047, 1_048, 1_049], 'the newest three, nothing older')
  t.equal(await throttle.retryAfter('sprayed', 'c', 2_000), 60, 'counted from the oldest of them')
})

t.test('the in-memory login throttle tells accounts apart by lower case, as usernames are compared', async (t) => {
  const throttle = new MemoryLoginThrottle(1, 60_000, 100)
  await throttle.recordFailure('straße', 'c', 0)
  t.equal(await throttle.retryAfter('STRASSE', 'c', 0), 0, '"STRASSE" is another account: upper-casing would merge them')
  t.equal(await throttle.retryAfter('Straße', 'c', 0), 60, 'the same account in another case is the same pair')
})
