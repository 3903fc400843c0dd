import t from 'tap'
import { openRedis } from '../../src/redis/client.js'
import { RedisRateCounter } from '../../src/redis/rate-counter.js'
import { redisForTest, testRedisUrl } from '../support/redis.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('N events are allowed in the window, the next is refused and not counted', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const counter = new RedisRateCounter(redis, 3, 60_000, { prefix })
  t.same([await counter.take('ada'), await counter.take('ada'), await counter.take('ada')], [true, true, true], 'three allowed')
  t.equal(await counter.take('ada'), false, 'the fourth refused')
  t.equal(await counter.take('ada'), false, 'and the fifth')
  t.equal(await redis.zcard(counter.key('ada')), 3, 'refused events are not stored')
})

t.test('the window slides: events leave it one by one, refusals do not hold it back', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const counter = new RedisRateCounter(redis, 2, 400, { prefix })
  // Each event is stamped by the server between the call and its answer: wait from the answer.
  const take = async () => { const ok = await counter.take('k'); return { ok, at: Date.now() } }
  const until = (at: number) => sleep(Math.max(0, at - Date.now()))
  const a = await take()
  await sleep(200)
  const b = await take()
  t.ok(a.ok && b.ok, 'two allowed')
  t.notOk((await take()).ok, 'third refused')
  await until(a.at + 400 + 30)
  const c = await take()
  t.ok(c.ok, 'allowed again once the first left')
  t.notOk((await take()).ok, 'the second and third still count')
  await until(b.at + 400 + 30)
  t.ok((await take()).ok, 'the second left too')
  await sleep(400 + 100)
  t.equal(await redis.exists(counter.key('k')), 0, 'the key expired with its last event')
})

t.test('two clients (two processes) share one count', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const other = await openRedis(testRedisUrl().toString())
  t.teardown(() => other.quit())
  const one = new RedisRateCounter(redis, 3, 60_000, { prefix })
  const two = new RedisRateCounter(other, 3, 60_000, { prefix })
  t.ok(await one.take('ada'))
  t.ok(await two.take('ada'))
  t.ok(await one.take('ada'))
  t.notOk(await two.take('ada'), 'the other client sees three already')
  t.notOk(await one.take('ada'))
})

t.test('40 concurrent takes with limit 3: exactly 3 allowed', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const other = await openRedis(testRedisUrl().toString())
  t.teardown(() => other.quit())
  const counters = [new RedisRateCounter(redis, 3, 60_000, { prefix }), new RedisRateCounter(other, 3, 60_000, { prefix })]
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (counters[i % 2] as RedisRateCounter).take('k')))
  t.equal(results.filter(Boolean).length, 3)
  t.equal(await redis.zcard(counters[0]!.key('k')), 3, 'three stored')
})

t.test('keys carry a TTL of the window; keys are hashed and names keep counters apart', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  const counter = new RedisRateCounter(redis, 3, 3_600_000, { prefix, name: 'mail' })
  await counter.take('user:1')
  const ttl = await redis.pttl(counter.key('user:1'))
  t.ok(ttl > 3_590_000 && ttl <= 3_600_000, `PTTL is the window (${ttl})`)

  const hostile = 'x'.repeat(100_000) + '\n*:{}'
  await counter.take(hostile)
  t.match(counter.key(hostile), new RegExp(`^${prefix}mail:[A-Za-z0-9_-]{43}$`), 'fixed length, whatever the text')
  t.not(counter.key('a'), counter.key('A'), 'distinct texts, distinct keys')

  const other = new RedisRateCounter(redis, 1, 3_600_000, { prefix, name: 'reset' })
  t.ok(await other.take('user:1'), 'another name counts apart')
  t.notOk(await other.take('user:1'))
  t.ok(await counter.take('user:1'), 'the first counter still has room')
  t.same((await redis.keys(`${prefix}*`)).sort(), [counter.key(hostile), counter.key('user:1'), other.key('user:1')].sort(), 'only these keys, under the prefix')
})

t.test('a limit or window that is not a positive integer is refused', async (t) => {
  const { redis } = await redisForTest(t)
  t.throws(() => new RedisRateCounter(redis, 0, 1000), RangeError)
  t.throws(() => new RedisRateCounter(redis, 1, 0.5), RangeError)
})
