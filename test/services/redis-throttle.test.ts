import t from 'tap'
import { openRedis } from '../../src/redis/client.js'
import { RedisLoginThrottle } from '../../src/redis/login-throttle.js'
import { redisForTest, testRedisUrl } from '../support/redis.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const FIFTEEN_MINUTES = 15 * 60

t.test('below the limit an attempt is allowed; at the limit Retry-After is the whole window', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 3, { prefix })
  t.equal(await throttle.retryAfter('ada', '1.2.3.4'), 0, 'no failures: allowed')
  await throttle.recordFailure('ada', '1.2.3.4')
  await throttle.recordFailure('ada', '1.2.3.4')
  t.equal(await throttle.retryAfter('ada', '1.2.3.4'), 0, 'limit - 1 failures: allowed')
  await throttle.recordFailure('ada', '1.2.3.4')
  t.equal(await throttle.retryAfter('ada', '1.2.3.4'), FIFTEEN_MINUTES, 'limit reached: wait the window (default 15 min)')
  await throttle.recordFailure('ada', '1.2.3.4')
  t.equal(await throttle.retryAfter('ada', '1.2.3.4'), FIFTEEN_MINUTES, 'still the window past the limit')
  t.equal(await redis.zcard(throttle.key('ada', '1.2.3.4')), 3, 'only the last `limit` failures are kept')
})

t.test('Retry-After counts from the oldest failure that still counts, not the oldest kept or the newest', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 2, { prefix, windowMs: 5000 })
  await throttle.recordFailure('ada', 'c') // A at 0
  await sleep(1200)
  await throttle.recordFailure('ada', 'c') // B at 1.2 s
  await sleep(1200)
  await throttle.recordFailure('ada', 'c') // C at 2.4 s
  // From B: ceil(1.2 + 5 - 2.4) = 4. From A it would be 3, from C 5.
  t.equal(await throttle.retryAfter('ada', 'c'), 4)
})

t.test('the window slides: failures leave it one by one, and a Retry-After under a second is 1', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 2, { prefix, windowMs: 1500 })
  // Each failure is stamped by the server between the call and its answer: wait from the answer.
  const fail = async () => { await throttle.recordFailure('ada', 'c'); return Date.now() }
  const until = (at: number) => sleep(Math.max(0, at - Date.now()))
  const a = await fail()
  await sleep(700)
  const b = await fail()
  t.equal(await throttle.retryAfter('ada', 'c'), 1, 'A leaves in about 0.8 s: rounded up to 1')
  await until(a + 1500 + 50)
  t.equal(await throttle.retryAfter('ada', 'c'), 0, 'A has left the window: allowed again')
  const c = await fail()
  t.equal(await throttle.retryAfter('ada', 'c'), 1, 'B and C count: limited again until B leaves')
  await until(b + 1500 + 50)
  t.equal(await throttle.retryAfter('ada', 'c'), 0, 'B has left too')
  await until(c + 1500 + 100)
  t.equal(await redis.exists(throttle.key('ada', 'c')), 0, 'the key expired with its last failure')
})

t.test('reset forgets the pair', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 2, { prefix })
  await throttle.recordFailure('ada', 'c')
  await throttle.recordFailure('ada', 'c')
  t.ok(await throttle.retryAfter('ada', 'c') > 0, 'limited')
  await throttle.reset('ADA', 'c')
  t.equal(await throttle.retryAfter('ada', 'c'), 0, 'allowed after reset (account case-folded there too)')
  t.equal(await redis.exists(throttle.key('ada', 'c')), 0, 'the key is gone')
  await throttle.recordFailure('ada', 'c')
  t.equal(await throttle.retryAfter('ada', 'c'), 0, 'counting starts again from zero')
})

t.test('the account is case-folded; the client is not', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 2, { prefix })
  await throttle.recordFailure('Ada@Example.COM', 'c')
  await throttle.recordFailure('ada@example.com', 'c')
  t.equal(await throttle.retryAfter('ADA@EXAMPLE.COM', 'c'), FIFTEEN_MINUTES, 'one count for every casing')
  await throttle.recordFailure('x', 'Client')
  await throttle.recordFailure('x', 'client')
  t.equal(await throttle.retryAfter('x', 'client'), 0, 'clients that differ in case are different clients')
})

t.test('pairs are isolated: other clients on the account, and this client on other accounts, do not count', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 2, { prefix })
  await throttle.recordFailure('ada', 'attacker')
  await throttle.recordFailure('ada', 'attacker')
  t.ok(await throttle.retryAfter('ada', 'attacker') > 0, 'the attacker is limited on ada')
  t.equal(await throttle.retryAfter('ada', 'owner'), 0, 'the owner, from another client, is not locked out')
  t.equal(await throttle.retryAfter('grace', 'attacker'), 0, 'the attacker is not limited on another account')
  await throttle.recordFailure('grace', 'attacker')
  t.equal(await throttle.retryAfter('grace', 'attacker'), 0, 'grace counts on its own: 1 failure')
})

t.test('no two pairs share a key, whatever the account contains; keys have a fixed length', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 1, { prefix })
  const crafted: Array<[string, string]> = [
    ['a\nb', 'c'], ['a', 'b\nc'], ['a\n', 'b'], ['a', '\nb'],
    ['a","b', 'c'], ['a', 'b","c'], ['["a","b"]', 'c'], ['a\\', '"b'], ['a', '\\"b'],
    ['', 'a\nb'], ['a\nb', ''], ['a:b', 'c'], ['a', 'b:c']
  ]
  const keys = crafted.map(([account, client]) => throttle.key(account, client))
  t.equal(new Set(keys).size, crafted.length, 'every crafted pair has its own key')
  // Behaviour, not only keys: a failure on one pair limits that pair alone.
  await throttle.recordFailure('a\nb', 'c')
  t.ok(await throttle.retryAfter('a\nb', 'c') > 0, 'the pair that failed is limited (limit 1)')
  t.equal(await throttle.retryAfter('a', 'b\nc'), 0, 'the pair with the separator moved is not')
  t.equal(await throttle.retryAfter('a\nb\nc', ''), 0, 'nor one with everything in the account')
  const long = throttle.key('x'.repeat(254) + '@example.com', '2001:db8::1')
  t.equal(long.length, throttle.key('', '').length, 'a 266-character account gives a key as long as an empty one')
  t.ok(long.startsWith(`${prefix}login-failures:`) && long.length < prefix.length + 60, `the key is bounded: ${long.length} chars`)
})

t.test('keys expire with the window', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 5, { prefix })
  await throttle.recordFailure('ada', 'c')
  const ttl = await redis.pttl(throttle.key('ada', 'c'))
  t.ok(ttl > FIFTEEN_MINUTES * 1000 - 5000 && ttl <= FIFTEEN_MINUTES * 1000, `PTTL ${ttl} ms is the window`)
  const short = new RedisLoginThrottle(redis, 5, { prefix, windowMs: 60_000 })
  await short.recordFailure('ada', 'd')
  const shortTtl = await redis.pttl(short.key('ada', 'd'))
  t.ok(shortTtl > 55_000 && shortTtl <= 60_000, `PTTL ${shortTtl} ms follows windowMs`)
})

t.test('the clock is the Redis server\'s: a caller with a wildly wrong clock gets the same answers', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const throttle = new RedisLoginThrottle(redis, 2, { prefix })
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  Date.now = () => realNow() + 3_600_000 // an hour ahead
  await throttle.recordFailure('ada', 'c')
  Date.now = () => realNow() - 3_600_000 // an hour behind
  await throttle.recordFailure('ada', 'c')
  t.equal(await throttle.retryAfter('ada', 'c'), FIFTEEN_MINUTES)
  Date.now = realNow
  t.equal(await throttle.retryAfter('ada', 'c'), FIFTEEN_MINUTES)
})

t.test('two clients (two processes) share one count', async (t) => {
  const { redis: first, prefix } = await redisForTest(t)
  const second = await openRedis(testRedisUrl().toString())
  t.teardown(() => second.quit())
  const a = new RedisLoginThrottle(first, 3, { prefix })
  const b = new RedisLoginThrottle(second, 3, { prefix })
  await a.recordFailure('ada', 'c')
  await b.recordFailure('ada', 'c')
  t.equal(await a.retryAfter('ada', 'c'), 0, 'two of three, seen from the first')
  t.equal(await b.retryAfter('ada', 'c'), 0, 'two of three, seen from the second')
  await a.recordFailure('ada', 'c')
  t.equal(await b.retryAfter('ada', 'c'), FIFTEEN_MINUTES, 'the second sees the third failure, made by the first')
  await b.reset('ada', 'c')
  t.equal(await a.retryAfter('ada', 'c'), 0, 'a reset through the second frees the first')
})

t.test('50 concurrent failures from 5 clients are all counted, even within one millisecond', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const clients = [redis]
  for (let i = 1; i < 5; i++) {
    const client = await openRedis(testRedisUrl().toString())
    t.teardown(() => client.quit())
    clients.push(client)
  }
  const recorders = clients.map((client) => new RedisLoginThrottle(client, 1000, { prefix }))
  await Promise.all(recorders.flatMap((throttle) => Array.from({ length: 10 }, () => throttle.recordFailure('ada', 'c'))))
  const key = recorders[0]!.key('ada', 'c')
  t.equal(await redis.zcard(key), 50, 'fifty entries')
  t.equal(await new RedisLoginThrottle(redis, 50, { prefix }).retryAfter('ada', 'c'), FIFTEEN_MINUTES, 'limit 50: limited')
  t.equal(await new RedisLoginThrottle(redis, 51, { prefix }).retryAfter('ada', 'c'), 0, 'limit 51: one more allowed')

  // And the trim is atomic too: 50 concurrent failures under a limit of 3 leave exactly 3 entries.
  const small = clients.map((client) => new RedisLoginThrottle(client, 3, { prefix }))
  await Promise.all(small.flatMap((throttle) => Array.from({ length: 10 }, () => throttle.recordFailure('grace', 'c'))))
  t.equal(await redis.zcard(small[0]!.key('grace', 'c')), 3, 'trimmed to the limit')
})

t.test('the constructor refuses a limit or window that cannot work', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  t.throws(() => new RedisLoginThrottle(redis, 0, { prefix }), RangeError)
  t.throws(() => new RedisLoginThrottle(redis, 1.5, { prefix }), RangeError)
  t.throws(() => new RedisLoginThrottle(redis, 1, { prefix, windowMs: 0 }), RangeError)
})
