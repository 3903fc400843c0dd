import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { MemoryLoginThrottle, type LoginThrottle } from '../src/domain/login-throttle.js'
import { isRedisUnavailable, openRedis } from '../src/redis/client.js'
import { RedisLoginThrottle } from '../src/redis/login-throttle.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed logins per account and client: shared through Redis when REDIS_URL is set, else per process. */
    loginThrottle: LoginThrottle
    /** The shared Redis when REDIS_URL is set (rate limit, throttles), else null. */
    redis: Redis | null
    /** Whether an error means Redis cannot be reached (→ 503). */
    redisUnavailable: (err: unknown) => boolean
  }
}

/**
 * The counters the contract limits, kept where every process that must agree on them can see them:
 * in Redis when REDIS_URL is set, else in this process's memory.
 */
export default fp(async (app) => {
  const { loginFailureLimit, redisUrl, redisKeyPrefix } = app.config
  if (redisUrl === undefined) {
    if (app.db.networked) {
      app.log.warn('REDIS_URL is not set: the /auth rate limit, the login-failure throttle and the mail limits are counted per process, so N processes allow N times the limits')
    }
    app.decorate('redis', null)
    app.decorate('redisUnavailable', () => false)
    app.decorate('loginThrottle', new MemoryLoginThrottle(loginFailureLimit))
    return
  }
  const redis = await openRedis(redisUrl, app.log)
  app.decorate('redis', redis)
  app.decorate('redisUnavailable', isRedisUnavailable)
  app.decorate('loginThrottle', new RedisLoginThrottle(redis, loginFailureLimit, { prefix: redisKeyPrefix }))
  app.addHook('onClose', async () => {
    await redis.quit().catch(() => redis.disconnect())
  })
}, { name: 'counters', dependencies: ['config', 'db'] })
