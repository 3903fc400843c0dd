import net from 'node:net'
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { isRedisUnavailable, openRedis, pingRedis, type RedisLogger } from '../../src/redis/client.js'
import { RedisLoginThrottle } from '../../src/redis/login-throttle.js'
import { redisForTest, testRedisUrl, viaPort } from '../support/redis.js'
import { startProxy } from '../support/tcp-proxy.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** How a promise settles, and how long it took. */
async function settle<T> (promise: Promise<T>): Promise<{ ms: number, value?: T, error?: unknown }> {
  const start = Date.now()
  try {
    const value = await promise
    return { ms: Date.now() - start, value }
  } catch (error) {
    return { ms: Date.now() - start, error }
  }
}

/** Polls until `fn` resolves (rather than rejects) or `ms` pass; returns how long it took, or -1. */
async function recovers (fn: () => Promise<unknown>, ms: number): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    try {
      await fn()
      return Date.now() - start
    } catch {
      await sleep(100)
    }
  }
  return -1
}

const message = (err: unknown) => err instanceof Error ? err.message : String(err)

/** A proxy in front of the test Redis, a client through it with a recording logger, and a throttle on it. */
async function throughProxy (t: Test) {
  const url = testRedisUrl()
  const proxy = await startProxy(Number(url.port || 6379), url.hostname)
  t.teardown(() => proxy.close())
  const warnings: Array<{ obj: object, msg: string }> = []
  const logger: RedisLogger = { warn: (obj, msg) => { warnings.push({ obj, msg }) } }
  const redis = await openRedis(viaPort(url, proxy.port), logger)
  t.teardown(() => redis.disconnect())
  const { prefix } = await redisForTest(t) // a direct client cleans the prefix up
  const throttle = new RedisLoginThrottle(redis, 2, { prefix })
  return { proxy, redis, throttle, warnings }
}

t.test('openRedis on a closed port rejects at once, naming REDIS_URL, and leaves nothing running', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
  const result = await settle(openRedis(`redis://:hunter2@127.0.0.1:${port}/0`))
  t.ok(result.error instanceof Error, 'rejects')
  t.match(message(result.error), /^REDIS_URL: cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: connect ECONNREFUSED/,
    'names REDIS_URL, the address and the cause')
  t.notMatch(message(result.error), /hunter2/, 'without the password')
  t.ok(result.ms < 2000, `within ${result.ms} ms`)
  t.ok(isRedisUnavailable(result.error), 'counts as Redis unavailable')
  // Had the rejected client kept reconnecting, its timer would keep this process alive and tap would time out.
})

t.test('Redis cut: commands reject fast as unavailable, health says no, and the same client recovers by itself', async (t) => {
  const { proxy, redis, throttle, warnings } = await throughProxy(t)
  await throttle.recordFailure('ada', 'c')
  t.equal(await pingRedis(redis), true, 'healthy before')

  const inFlight = throttle.retryAfter('ada', 'c') // sent, perhaps answered, as the link is cut
  await proxy.cut()
  const during = await settle(inFlight)
  t.ok(during.error === undefined || isRedisUnavailable(during.error), `in flight: answered or unavailable (${message(during.error)})`)

  for (const [name, op] of [
    ['retryAfter', () => throttle.retryAfter('ada', 'c')],
    ['recordFailure', () => throttle.recordFailure('ada', 'c')],
    ['reset', () => throttle.reset('ada', 'c')]
  ] as const) {
    const result = await settle<unknown>(op())
    t.ok(result.error !== undefined, `${name} rejects`)
    t.ok(isRedisUnavailable(result.error), `${name}: unavailable (${message(result.error)})`)
    t.ok(result.ms < 2500, `${name}: within ${result.ms} ms`)
  }
  const health = await settle(pingRedis(redis))
  t.equal(health.value, false, 'pingRedis is false')
  t.ok(health.ms < 1200, `pingRedis answers within ${health.ms} ms`)

  await sleep(2000) // several reconnect attempts fail meanwhile
  const errors = warnings.filter((w) => w.msg === 'Redis connection error')
  t.equal(errors.length, 1, `one error logged for the outage, not one per reconnect attempt (${errors.length})`)

  await proxy.restore()
  const ms = await recovers(() => throttle.retryAfter('ada', 'c'), 5000)
  t.ok(ms >= 0, `the same client works again by itself, ${ms} ms after restore`)
  t.equal(await throttle.retryAfter('ada', 'c'), 0, 'and reads the count kept in Redis')
  await throttle.recordFailure('ada', 'c')
  t.ok(await throttle.retryAfter('ada', 'c') > 0, 'the failure before the cut still counts, with one after it')
  t.equal(await pingRedis(redis), true, 'healthy again')
  t.ok(warnings.some((w) => w.msg === 'Redis connection restored'), 'the recovery is logged')
})

t.test('Redis black-holed: commands time out as unavailable instead of hanging, and the client recovers', async (t) => {
  const { proxy, redis, throttle } = await throughProxy(t)
  await throttle.recordFailure('ada', 'c')
  proxy.hang()

  const result = await settle(throttle.retryAfter('ada', 'c'))
  t.ok(isRedisUnavailable(result.error), `retryAfter: unavailable (${message(result.error)})`)
  t.ok(result.ms >= 1500 && result.ms < 2500, `after the command timeout, ${result.ms} ms`)
  const health = await settle(pingRedis(redis))
  t.equal(health.value, false, 'pingRedis is false')
  t.ok(health.ms < 1200, `pingRedis gives up within ${health.ms} ms`)

  await proxy.restore()
  const ms = await recovers(() => throttle.retryAfter('ada', 'c'), 5000)
  t.ok(ms >= 0, `the same client works again by itself, ${ms} ms after restore`)
  t.equal(await pingRedis(redis), true, 'healthy again')
})

t.test('black hole that never ends: the client drops the dead connection itself and keeps failing fast', async (t) => {
  const { proxy, redis } = await throughProxy(t)
  proxy.hang()
  await settle(redis.get('x')) // sent into the hole; the socket timeout fires after it
  await sleep(1500)
  t.not(redis.status, 'ready', `the dead connection was dropped (status ${redis.status})`)
  const result = await settle(redis.get('x'))
  t.ok(isRedisUnavailable(result.error), `later commands: unavailable (${message(result.error)})`)
  t.ok(result.ms < 2500, `within ${result.ms} ms`)
})

t.test('isRedisUnavailable: outages yes, ordinary errors no', async (t) => {
  const { redis, prefix } = await redisForTest(t)
  await redis.set(`${prefix}string`, 'x')
  const wrongType = await settle(redis.zcard(`${prefix}string`))
  t.match(message(wrongType.error), /^WRONGTYPE/, 'a real WRONGTYPE reply')
  t.equal(isRedisUnavailable(wrongType.error), false, 'WRONGTYPE is not unavailability')

  // A WRONGTYPE raised inside the throttle's script, too.
  const throttle = new RedisLoginThrottle(redis, 2, { prefix })
  await redis.set(throttle.key('ada', 'c'), 'not a sorted set')
  const scripted = await settle(throttle.recordFailure('ada', 'c'))
  t.ok(scripted.error !== undefined, `a script error rejects (${message(scripted.error)})`)
  t.equal(isRedisUnavailable(scripted.error), false, 'and is not unavailability')

  const closed = await openRedis(testRedisUrl().toString())
  await closed.quit()
  const afterQuit = await settle(closed.get('x'))
  t.equal(message(afterQuit.error), 'Connection is closed.')
  t.equal(isRedisUnavailable(afterQuit.error), true, 'a closed client is unavailability')

  const coded = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code })
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']) t.ok(isRedisUnavailable(coded(code)), code)
  t.ok(isRedisUnavailable(new Error('Command timed out')), 'command timeout')
  t.ok(isRedisUnavailable(new Error("Stream isn't writeable and enableOfflineQueue options is false")), 'offline')
  t.ok(isRedisUnavailable(new AggregateError([coded('ECONNREFUSED')], '')), 'AggregateError of refusals')
  t.ok(isRedisUnavailable(new Error('wrapped', { cause: coded('ECONNRESET') })), 'through cause')
  const reply = (text: string) => Object.assign(new Error(text), { name: 'ReplyError' })
  t.ok(isRedisUnavailable(reply('LOADING Redis is loading the dataset in memory')), 'LOADING reply')
  t.notOk(isRedisUnavailable(reply('ERR wrong number of arguments')), 'ERR reply')
  t.notOk(isRedisUnavailable(new TypeError('x is not a function')), 'TypeError')
  t.notOk(isRedisUnavailable(new Error('boom')), 'plain Error')
  t.notOk(isRedisUnavailable(coded('EACCES')), 'EACCES')
  for (const value of [undefined, null, 'Command timed out', 42]) t.notOk(isRedisUnavailable(value), `non-error ${String(value)}`)
})

t.test('pingRedis never throws, even on a client that was never usable', async (t) => {
  const { Redis: RedisClass } = await import('ioredis')
  const idle: Redis = new RedisClass({ lazyConnect: true, enableOfflineQueue: false, port: 1 })
  idle.on('error', () => {})
  t.teardown(() => idle.disconnect())
  t.equal(await pingRedis(idle), false)
})
