// The failed-login throttle: its in-memory store (src/domain/login-throttle.ts) to the millisecond,
// and, through the API, how a success sets an account's count back. The Redis store runs the same
// cases in test/services/redis-throttle.test.ts.
import t from 'tap'
import { MemoryLoginThrottle } from '../../src/domain/login-throttle.js'
import { build, loginAs, PASSWORD } from '../helper.js'
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
