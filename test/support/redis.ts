import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { openRedis } from '../../src/redis/client.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** The Redis the tests under test/services use; they need a real one and say so when it is not given. */
export function testRedisUrl (): URL {
  const url = process.env.TEST_REDIS_URL
  if (url === undefined || url === '') {
    throw new Error('TEST_REDIS_URL is not set: tests under test/services need a real Redis, ' +
      'e.g. TEST_REDIS_URL=redis://127.0.0.1:6379/0')
  }
  return new URL(url)
}

/** The same Redis (database, credentials) reached through another host and port: a proxy's. */
export function viaPort (url: URL, port: number, host = '127.0.0.1'): string {
  const copy = new URL(url)
  copy.hostname = host
  copy.port = String(port)
  return copy.toString()
}

/** A key prefix no other test (or parallel test file) uses. */
export const uniquePrefix = () => `inkwell-test:${randomUUID()}:`

/** Deletes every key under the prefix. */
export async function deleteKeys (redis: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await redis.del(...keys)
  } while (cursor !== '0')
  return deleted
}

/** A client on the test Redis and a fresh prefix; at teardown the prefix's keys go and the client closes. */
export async function redisForTest (t: Teardown): Promise<{ redis: Redis, prefix: string }> {
  const redis = await openRedis(testRedisUrl().toString())
  const prefix = uniquePrefix()
  t.teardown(async () => {
    await deleteKeys(redis, prefix)
    await redis.quit()
  })
  return { redis, prefix }
}
