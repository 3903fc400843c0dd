/** Failed logins per (account, client) pair: in this process's memory, or in Redis for every process. */
export interface LoginThrottle {
  /**
   * Counts an attempt before its password or code is checked, in one atomic step: 0 when the attempt
   * may go on (it is counted now, as a failure until `reset` says otherwise), else the seconds to wait
   * (nothing counted). So of any number of attempts sent at once, at most the limit are checked.
   */
  reserve: (account: string, client: string) => Promise<number>
  /** Seconds until another attempt is allowed, or 0 when it is allowed now. Read-only. */
  retryAfter: (account: string, client: string) => Promise<number>
  /** Counts one failure that was not reserved (tests, and tools that replay a log). */
  recordFailure: (account: string, client: string) => Promise<void>
  /** A login succeeded: the pair's count starts again. */
  reset: (account: string, client: string) => Promise<void>
}

/**
 * Counts failed logins per (account, client) pair in a sliding window. Another client's failures
 * on the same account do not lock its owner out, and one client's failures on other accounts
 * do not count against this one. Kept in memory: a restart forgets, which errs towards availability; one process's count is its own
 * (src/redis/login-throttle.ts shares it across processes).
 */
export class MemoryLoginThrottle implements LoginThrottle {
  private readonly failures = new Map<string, number[]>()

  constructor (
    private readonly limit: number,
    private readonly windowMs = 15 * 60 * 1000,
    private readonly maxKeys = 100_000
  ) {}

  private static key (account: string, client: string): string {
    return `${account.toLowerCase()}\n${client}`
  }

  private recent (key: string, at: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => t > at - this.windowMs)
    if (times.length === 0) this.failures.delete(key)
    else this.failures.set(key, times)
    return times
  }

  /** Synchronous from the read to the write: one process runs no other attempt in between. */
  async reserve (account: string, client: string, at = Date.now()): Promise<number> {
    const key = MemoryLoginThrottle.key(account, client)
    const wait = this.wait(key, at)
    if (wait === 0) this.record(key, at)
    return wait
  }

  /** Seconds until another attempt is allowed, or 0 when it is allowed now. */
  async retryAfter (account: string, client: string, at = Date.now()): Promise<number> {
    return this.wait(MemoryLoginThrottle.key(account, client), at)
  }

  async recordFailure (account: string, client: string, at = Date.now()): Promise<void> {
    this.record(MemoryLoginThrottle.key(account, client), at)
  }

  private wait (key: string, at: number): number {
    const times = this.recent(key, at)
    if (times.length < this.limit) return 0
    const oldestThatCounts = times[times.length - this.limit] as number
    return Math.max(1, Math.ceil((oldestThatCounts + this.windowMs - at) / 1000))
  }

  private record (key: string, at: number): void {
    const times = this.recent(key, at)
    times.push(at)
    this.failures.set(key, times.slice(-this.limit))
    // Stryker disable next-line ConditionalExpression,EqualityOperator: sweeping at or below the bound drops only expired pairs, which count for nothing: only the cost differs
    if (this.failures.size > this.maxKeys) this.sweep(at)
  }

  async reset (account: string, client: string): Promise<void> {
    this.failures.delete(MemoryLoginThrottle.key(account, client))
  }

  /** Bounds memory under a spray of distinct accounts: drop expired pairs, then the oldest. */
  private sweep (at: number): void {
    for (const key of this.failures.keys()) this.recent(key, at)
    const excess = this.failures.size - this.maxKeys
    // Stryker disable next-line ConditionalExpression,EqualityOperator: with no excess the loop below stops at once anyway; this return only says so
    if (excess <= 0) return
    let dropped = 0
    for (const key of this.failures.keys()) {
      if (dropped++ >= excess) break
      this.failures.delete(key)
    }
  }
}
