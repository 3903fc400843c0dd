/** Events per key in a sliding window ("at most 3 mails an account an hour"): in memory, or in Redis for every process. */
export interface RateCounter {
  /** Counts one event for key and says whether it is within the limit (true) or over it (false: not counted). */
  take (key: string): Promise<boolean>
}

export function checkLimits (limit: number, windowMs: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`)
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new RangeError(`windowMs must be a positive integer, got ${windowMs}`)
}

/**
 * A sliding window per key in this process's memory: an event counts while it is younger than the
 * window, and a refused event is not counted, so a caller who keeps asking is let through again as
 * soon as the oldest counted event leaves the window. A restart forgets; one process's count is its
 * own (src/redis/rate-counter.ts shares it). Memory stays bounded under a spray of distinct keys.
 */
export class MemoryRateCounter implements RateCounter {
  private readonly events = new Map<string, number[]>()

  constructor (
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 100_000
  ) {
    checkLimits(limit, windowMs)
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`)
  }

  private recent (key: string, at: number): number[] {
    const times = (this.events.get(key) ?? []).filter((t) => t > at - this.windowMs)
    if (times.length === 0) this.events.delete(key)
    else this.events.set(key, times)
    return times
  }

  /** `at` (ms) is for tests; callers leave it out. */
  async take (key: string, at = Date.now()): Promise<boolean> {
    const times = this.recent(key, at)
    if (times.length >= this.limit) return false
    times.push(at)
    this.events.set(key, times)
    if (this.events.size > this.maxKeys) this.sweep(at)
    return true
  }

  /** Keys held now (tests). */
  get size (): number {
    return this.events.size
  }

  /** Drops expired keys, then the oldest inserted, until at most maxKeys remain. */
  private sweep (at: number): void {
    for (const key of this.events.keys()) this.recent(key, at)
    let excess = this.events.size - this.maxKeys
    for (const key of this.events.keys()) {
      if (excess-- <= 0) break
      this.events.delete(key)
    }
  }
}
