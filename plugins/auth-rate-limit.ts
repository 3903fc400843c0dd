import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'

/**
 * The /auth rate limit: AUTH_RATE_LIMIT requests a minute per client, counted in Redis when there is
 * one. It applies to the scope it is registered in (src/app.ts): /auth/* and the pages its mailed
 * links open (routes/pages) spend one budget, as the token-spending and password-hashing routes they are.
 */
export default fp(async (app) => {
  await app.register(rateLimit, {
    max: app.config.authRateLimit,
    timeWindow: 60_000,
    onExceeded: () => app.metrics.refused('auth_rate_limit'),
    ...(app.redis !== null && { redis: app.redis, nameSpace: `${app.config.redisKeyPrefix}rate-limit:` })
  })
}, { name: 'auth-rate-limit', dependencies: ['config', 'counters', 'metrics'] })
