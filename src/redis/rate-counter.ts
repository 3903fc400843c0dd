import { createHash, randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import { SLIDING_WINDOW_PREAMBLE } from './sliding-window.js'
import { checkLimits, type RateCounter } from '../domain/rate-counter.js'

export interface RedisRateCounterOptions {
  /** Prepended to every key (default 'inkwell:'). */
  prefix?: string
  /** Names the counter inside the prefix, so counters with the same keys do not share counts (default 'rate'). */
  name?: string
}

/**
 * KEYS[1] the key's sorted set; ARGV window ms, limit, a unique member. Returns 1 when counted, 0 when
 * over the limit (nothing written). On the Redis server's clock, so processes whose clocks disagree
 * still agree; an event counts while score > now - window, as in MemoryRateCounter.
 */
const TAKE = `${SLIDING_WINDOW_PREAMBLE}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
`

// The script as a command of the client (ioredis's way of typing defineCommand).
declare module 'ioredis' {
  interface RedisCommander<Context> {
    inkwellRateCounterTake (key: string, windowMs: number, limit: number, member: string): Result<number, Context>
  }
}

/**
 * MemoryRateCounter's sliding window kept in Redis, so every process sharing it counts the same
 * events: one sorted set of event times per key, checked and written by one script (atomic, so
 * concurrent takes never let more than `limit` through), expiring with its newest event's window.
 * Rejects with the client's error when Redis is unavailable (see isRedisUnavailable): the caller
 * chooses whether that refuses or allows.
 */
export class RedisRateCounter implements RateCounter {
  private readonly prefix: string
  private readonly name: string

  constructor (private readonly redis: Redis, private readonly limit: number, private readonly windowMs: number, options: RedisRateCounterOptions = {}) {
    checkLimits(limit, windowMs)
    this.prefix = options.prefix ?? 'inkwell:'
    this.name = options.name ?? 'rate'
    // defineCommand is idempotent per name; the script is sent by EVALSHA, falling back to EVAL once.
    redis.defineCommand('inkwellRateCounterTake', { numberOfKeys: 1, lua: TAKE })
  }

  /** The key's Redis key: a hash, so its length is fixed whatever the (attacker-chosen) text, and no two keys collide. */
  key (key: string): string {
    return `${this.prefix}${this.name}:${createHash('sha256').update(key).digest('base64url')}`
  }

  async take (key: string): Promise<boolean> {
    // A random member: two events in the same millisecond are two entries, not one.
    const member = randomBytes(12).toString('base64url')
    return Number(await this.redis.inkwellRateCounterTake(this.key(key), this.windowMs, this.limit, member)) === 1
  }
}
