export interface Limited {
  <T>(work: () => Promise<T>): Promise<T>
  /** How many calls run now and how many wait: read by the metrics at scrape time. */
  readonly load: () => { running: number, waiting: number }
}

/**
 * A limit on how many calls of `work` run at once; the rest wait their turn in order.
 * Used to keep CPU-heavy work on libuv's thread pool (argon2, sharp) from taking every core.
 */
export function concurrencyLimit (slots: number): Limited {
  let running = 0
  const waiting: Array<() => void> = []
  async function limited<T> (work: () => Promise<T>): Promise<T> {
    if (running < slots) running++
    else await new Promise<void>((resolve) => waiting.push(resolve))
    try {
      return await work()
    } finally {
      // A waiter takes over the slot directly, so nobody can overtake it in between.
      const next = waiting.shift()
      if (next === undefined) running--
      else next()
    }
  }
  return Object.assign(limited, { load: () => ({ running, waiting: waiting.length }) })
}
