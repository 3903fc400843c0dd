import { createHash, randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import { SLIDING_WINDOW_PREAMBLE } from './sliding-window.js'
import type { LoginThrottle } from '../domain/login-throttle.js'
import { checkLimits } from '../domain/rate-counter.js'

export interface RedisLoginThrottleOptions {
  /** Length of the sliding window, ms (default 15 minutes). */
  windowMs?: number
  /** Prepended to every key (default 'inkwell:'). */
  prefix?: string
}

// Both scripts read the clock of the Redis server, so processes whose clocks disagree still agree on
// the window. A failure counts while it is younger than the window (score > now - window), as in the
// in-memory LoginThrottle. Scores are milliseconds.

/** KEYS[1] the pair's sorted set; ARGV window ms, limit, a unique member. */
const RECORD = `${SLIDING_WINDOW_PREAMBLE}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(limit + 1))
redis.call('PEXPIRE', KEYS[1], window)
return 0
`

/**
 * KEYS[1] the pair's sorted set; ARGV window ms, limit, a unique member. Counts the attempt and returns
 * 0 when fewer than `limit` count; else returns the seconds to wait and counts nothing. One script, so
 * no other attempt, from any process, runs between the count and the write.
 */
const RESERVE = `${SLIDING_WINDOW_PREAMBLE}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
  local wait = math.ceil((tonumber(oldest[2]) + window - now) / 1000)
  if wait < 1 then return 1 end
  return wait
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
`

/** KEYS[1] the pair's sorted set; ARGV window ms, limit. Returns seconds to wait, 0 when allowed. Read-only. */
const RETRY_AFTER = `${SLIDING_WINDOW_PREAMBLE}
local since = '(' .. (now - window)
if redis.call('ZCOUNT', KEYS[1], since, '+inf') < limit then return 0 end
local oldest = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', since, 'WITHSCORES', 'LIMIT', limit - 1, 1)
local wait = math.ceil((tonumber(oldest[2]) + window - now) / 1000)
if wait < 1 then return 1 end
return wait
`

// The scripts as commands of the client (ioredis's way of typing defineCommand).
declare module 'ioredis' {
  interface RedisCommander<Context> {
    inkwellLoginThrottleReserve (key: string, windowMs: number, limit: number, member: string): Result<number, Context>
    inkwellLoginThrottleRecord (key: string, windowMs: number, limit: number, member: string): Result<number, Context>
    inkwellLoginThrottleRetryAfter (key: string, windowMs: number, limit: number): Result<number, Context>
  }
}

/**
 * The login-failure throttle of MemoryLoginThrottle (src/domain/login-throttle.ts), kept in Redis so that every
 * process sharing it counts the same failures: a sliding window per (account lower-cased, client)
 * pair, each pair a sorted set of failure times trimmed to the last `limit` and expiring with the window.
 * Rejects with the client's error when Redis is unavailable (see isRedisUnavailable).
 */
export class RedisLoginThrottle implements LoginThrottle {
  private readonly windowMs: number
  private readonly prefix: string

  constructor (
    private readonly redis: Redis,
    private readonly limit: number,
    options: RedisLoginThrottleOptions = {}
  ) {
    this.windowMs = options.windowMs ?? 15 * 60 * 1000
    checkLimits(limit, this.windowMs)
    this.prefix = options.prefix ?? 'inkwell:'
    // defineCommand is idempotent per name; scripts are sent by EVALSHA, falling back to EVAL once.
    redis.defineCommand('inkwellLoginThrottleRecord', { numberOfKeys: 1, lua: RECORD })
    redis.defineCommand('inkwellLoginThrottleReserve', { numberOfKeys: 1, lua: RESERVE })
    redis.defineCommand('inkwellLoginThrottleRetryAfter', { numberOfKeys: 1, lua: RETRY_AFTER })
  }

  /**
   * The pair's key: a hash of the JSON pair, so its length is fixed whatever the (attacker-chosen)
   * account, and no two pairs share a key whatever characters they contain.
   */
  key (account: string, client: string): string {
    const pair = JSON.stringify([account.toLowerCase(), client])
    return `${this.prefix}login-failures:${createHash('sha256').update(pair).digest('base64url')}`
  }

  async reserve (account: string, client: string): Promise<number> {
    const member = randomBytes(12).toString('base64url')
    return Number(await this.redis.inkwellLoginThrottleReserve(this.key(account, client), this.windowMs, this.limit, member))
  }

  async retryAfter (account: string, client: string): Promise<number> {
    return Number(await this.redis.inkwellLoginThrottleRetryAfter(this.key(account, client), this.windowMs, this.limit))
  }

  async recordFailure (account: string, client: string): Promise<void> {
    // A random member: two failures in the same millisecond are two entries, not one.
    const member = randomBytes(12).toString('base64url')
    await this.redis.inkwellLoginThrottleRecord(this.key(account, client), this.windowMs, this.limit, member)
  }

  async reset (account: string, client: string): Promise<void> {
    await this.redis.del(this.key(account, client))
  }
}
