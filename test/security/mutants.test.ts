// Each test here kills a mutant that survived a mutation run (a one-line bug the suite did not notice):
// the behaviour is asserted where it is decided, through the API where it can be.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { MemoryLoginThrottle } from '../../src/domain/login-throttle.js'
import { build, countRows, injectWriteFailure, isCredentials401, loginAs, PASSWORD, updateUserRow } from '../helper.js'

t.test('a successful login resets the failure count of its account and client', async (t) => {
  const app = await build(t, { LOGIN_FAILURE_LIMIT: '3' })
  const user = await loginAs(app)
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/auth/token', payload: { username: user.username, password } })
  t.same([(await attempt('wrong one')).statusCode, (await attempt('wrong two')).statusCode], [401, 401], 'two failures')
  t.equal((await attempt(PASSWORD)).statusCode, 200, 'a success')
  t.same([(await attempt('wrong three')).statusCode, (await attempt('wrong four')).statusCode], [401, 401], 'two more failures: counted from zero again')
  t.equal((await attempt(PASSWORD)).statusCode, 200, 'still below the limit of 3 (without the reset it would be 4): the right password logs in')
  t.same([(await attempt('a')).statusCode, (await attempt('b')).statusCode, (await attempt('c')).statusCode], [401, 401, 401], 'three failures since that success')
  t.equal((await attempt(PASSWORD)).statusCode, 429, 'reach the limit: even the right password waits')
})

t.test('an admin deletion whose audit entry cannot be written deletes nothing', async (t) => {
  const app = await build(t)
  const admin = await loginAs(app, 'admin')
  const victim = await loginAs(app)
  t.equal((await app.inject({ method: 'POST', url: '/posts', headers: victim.auth, payload: { title: 'kept', content: 'kept' } })).statusCode, 201)
  const undo = await injectWriteFailure(app, 'audit_log', 'INSERT')
  const res = await app.inject({ method: 'DELETE', url: `/admin/users/${victim.id}`, headers: admin.auth })
  t.equal(res.statusCode, 500, 'the failed audit fails the request')
  t.same(res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }, 'and says nothing more')
  t.equal(await countRows(app, app.db.t.users, eq(app.db.t.users.id, victim.id)), 1, 'the user is still there')
  t.equal(await countRows(app, app.db.t.posts, eq(app.db.t.posts.authorId, victim.id)), 1, 'with their post')
  t.equal((await app.inject({ url: '/users/me', headers: victim.auth })).statusCode, 200, 'and their session')
  await undo()
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${victim.id}`, headers: admin.auth })).statusCode, 204, 'with the audit back, the deletion goes through')
  t.equal(await countRows(app, app.db.t.users, eq(app.db.t.users.id, victim.id)), 0, 'the user is gone')
  t.equal(await countRows(app, app.db.t.posts, eq(app.db.t.posts.authorId, victim.id)), 0, 'with their post')
  const [entry] = (await app.inject({ url: '/admin/audit?limit=1', headers: admin.auth })).json().items
  t.same([entry.action, entry.actor_id, entry.target_id], ['user.delete', admin.id, victim.id], 'and the audit says who deleted whom')
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

t.test('a hostile avatar name in the database never points a removal or a download outside the uploads folder', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const outside = join(app.uploadsDir, '..', 'precious.webp')
  mkdirSync(app.uploadsDir, { recursive: true })
  writeFileSync(outside, 'not an avatar')
  for (const hostile of ['../precious.webp', '/etc/passwd', '..%2Fprecious.webp', 'precious.webp']) {
    await updateUserRow(app, user.id, { avatar: hostile })
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me/avatar', headers: user.auth })).statusCode, 204, `${hostile}: the removal answers 204`)
    t.ok(existsSync(outside), `${hostile}: the file outside the uploads folder is untouched`)
    t.equal((await app.inject({ url: '/users/me', headers: user.auth })).json().avatar_url, null, `${hostile}: the row no longer names it`)
  }
  t.equal((await app.inject({ url: '/avatars/..%2Fprecious.webp' })).statusCode, 404, 'and it is never served')
})

t.test('the in-memory login throttle forgets the oldest pairs past its bound', async (t) => {
  const throttle = new MemoryLoginThrottle(2, 60_000, 10)
  await throttle.recordFailure('victim', '10.0.0.1')
  await throttle.recordFailure('victim', '10.0.0.1')
  t.ok(await throttle.retryAfter('victim', '10.0.0.1') > 0, 'at the limit: throttled')
  for (let i = 0; i < 10; i++) await throttle.recordFailure(`spray${i}`, '10.0.0.2')
  t.equal(await throttle.retryAfter('victim', '10.0.0.1'), 0, 'eleven pairs for a bound of ten: the oldest pair is gone')
  for (let i = 0; i < 2; i++) await throttle.recordFailure('spray9', '10.0.0.2')
  t.ok(await throttle.retryAfter('spray9', '10.0.0.2') > 0, 'a recent pair is still counted')
})

t.test('with TRUST_PROXY off, the audit records the peer, never an X-Forwarded-For a client sends', async (t) => {
  const app = await build(t)
  const admin = await loginAs(app, 'admin')
  const user = await loginAs(app)
  t.equal((await app.inject({
    method: 'PATCH', url: `/admin/users/${user.id}`, headers: { ...admin.auth, 'x-forwarded-for': '203.0.113.9' }, payload: { role: 'moderator' }
  })).statusCode, 200)
  const [entry] = (await app.inject({ url: '/admin/audit?limit=1', headers: admin.auth })).json().items
  t.equal(entry.ip, '127.0.0.1', 'the TCP peer, not the forged header')
})

t.test('logout with an already-used refresh token of a live session ends that session', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const rotated = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.refresh } })
  t.equal(rotated.statusCode, 200)
  const next = rotated.json()
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.access_token}` } })).statusCode, 200, 'the session lives')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: user.refresh } })).statusCode, 204, 'logout with the spent token')
  t.ok(isCredentials401(await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${next.access_token}` } })), 'the session\'s newest access token dies')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: next.refresh_token } })).statusCode, 401, 'and its newest refresh token')
})

t.test('the in-memory login throttle: a sliding window to the millisecond, Retry-After in whole seconds', async (t) => {
  const throttle = new MemoryLoginThrottle(2, 60_000, 100)
  await throttle.recordFailure('Alice', '10.0.0.1', 1_000)
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 1_500), 0, 'one failure of two allowed: not throttled')
  await throttle.recordFailure('ALICE', '10.0.0.1', 2_000)
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 2_000), 59, 'two, the account in any case: until the first leaves the window, 59 s')
  t.equal(await throttle.retryAfter('alice', '10.0.0.2', 2_000), 0, 'another client is not throttled')
  t.equal(await throttle.retryAfter('bob', '10.0.0.1', 2_000), 0, 'nor another account from this client')
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 60_500), 1, '0.5 s left rounds up to 1')
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 60_999), 1, '1 ms left is still 1 s, never 0')
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 61_000), 0, 'exactly one window after the first failure, it no longer counts')

  // Past the limit only the newest `limit` failures matter: the wait is counted from the oldest of them.
  await throttle.recordFailure('alice', '10.0.0.1', 61_000)
  await throttle.recordFailure('alice', '10.0.0.1', 62_000)
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 62_000), 59, 'the two newest count: 61 s + 60 s - 62 s')
  await throttle.reset('Alice', '10.0.0.1')
  t.equal(await throttle.retryAfter('alice', '10.0.0.1', 62_000), 0, 'a reset (any case) forgets the pair')
})

t.test('the in-memory login throttle drops expired pairs before live ones when it is full', async (t) => {
  const throttle = new MemoryLoginThrottle(1, 60_000, 2)
  await throttle.recordFailure('old', 'c', 0)
  await throttle.recordFailure('live', 'c', 50_000)
  await throttle.recordFailure('new', 'c', 70_000)
  t.equal(await throttle.retryAfter('live', 'c', 70_000), 40, 'the expired pair made room: the live one is still counted')
  t.equal(await throttle.retryAfter('new', 'c', 70_000), 60, 'and the new one')
  await throttle.recordFailure('newest', 'c', 71_000)
  t.equal(await throttle.retryAfter('live', 'c', 71_000), 0, 'full of live pairs: the oldest one goes')
  t.equal(await throttle.retryAfter('new', 'c', 71_000), 59, 'the next one stays')
  t.equal(await throttle.retryAfter('newest', 'c', 71_000), 60, 'and the newest')
})
