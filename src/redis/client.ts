import { Redis } from 'ioredis'
import { describeError, redactUrl, StartupError } from '../startup.js'

/** The part of a pino logger this module uses. */
export interface RedisLogger {
  warn (obj: object, msg: string): void
}

export interface OpenRedisOptions {
  /** Per-command deadline, ms (default 2000): a caller waits no longer than this for any answer. */
  commandTimeoutMs?: number
  /** At most one error log per this many ms; the ones in between are counted (default 10 s). */
  errorLogIntervalMs?: number
}

const COMMAND_TIMEOUT_MS = 2000
const MAX_RECONNECT_DELAY_MS = 1000
const ERROR_LOG_INTERVAL_MS = 10_000

/**
 * Opens a client that fails fast instead of queueing or hanging: while Redis is unreachable every
 * command rejects at once (or after `commandTimeoutMs` at worst) with an error that
 * `isRedisUnavailable` recognises, and the client keeps reconnecting in the background, so service
 * resumes by itself when Redis is back. Rejects, naming REDIS_URL, when Redis does not answer at start-up.
 */
export async function openRedis (url: string, logger?: RedisLogger, options: OpenRedisOptions = {}): Promise<Redis> {
  const commandTimeout = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS
  const logInterval = options.errorLogIntervalMs ?? ERROR_LOG_INTERVAL_MS
  const where = redactUrl(url)
  const redis = new Redis(url, {
    lazyConnect: true,
    // No offline queue: a command sent while disconnected rejects at once instead of waiting.
    enableOfflineQueue: false,
    // In-flight commands are rejected (by the timeout below, or at the second failed reconnect)...
    maxRetriesPerRequest: 1,
    // ...and never re-sent after a reconnect: a caller that was told "failed" must not see the
    // command take effect later behind its back (a late recordFailure, say).
    autoResendUnfulfilledCommands: false,
    commandTimeout,
    // A connection that swallows commands without answering (a black hole rather than a refusal) is
    // dropped so the reconnect loop can find a working one; a timed-out command alone would not do it.
    socketTimeout: commandTimeout + 500,
    connectTimeout: Math.max(commandTimeout, 3000),
    // Reconnect forever, quickly at first, then once a second.
    retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS)
  })

  // Without an 'error' listener an EventEmitter error would crash the process. During start-up the
  // first error only explains the rejection below; afterwards the first error of an outage is logged,
  // then at most one per interval with the number suppressed.
  let starting = true
  let firstError: Error | undefined
  let lastLogAt = -Infinity
  let suppressed = 0
  let down = false
  redis.on('error', (err: Error) => {
    if (starting) { firstError ??= err; return }
    down = true
    const now = Date.now()
    if (now - lastLogAt < logInterval) { suppressed++; return }
    logger?.warn({ err, redis: where, suppressed }, 'Redis connection error')
    lastLogAt = now
    suppressed = 0
  })
  redis.on('ready', () => {
    if (!down) return
    down = false
    logger?.warn({ redis: where, suppressed }, 'Redis connection restored')
    lastLogAt = -Infinity
    suppressed = 0
  })

  try {
    await redis.connect()
  } catch (err) {
    // Stop the reconnect loop: this client is abandoned.
    redis.disconnect()
    const cause = firstError ?? err
    throw new StartupError('REDIS_URL', `cannot connect to Redis at ${where}: ${describeError(cause)}`, { cause })
  }
  starting = false
  return redis
}

const UNAVAILABLE_MESSAGES = [
  "Stream isn't writeable", // offline queue disabled while disconnected or reconnecting
  'Connection is closed.', // client ended or given up
  'Command timed out', // commandTimeout
  'Reached the max retries per request limit', // MaxRetriesPerRequestError
  'Socket timeout', // socketTimeout
  'Command aborted due to connection close' // pipelines and transactions cut mid-way
]

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'ENETDOWN', 'ECONNABORTED', 'EHOSTDOWN', 'ERR_SOCKET_CLOSED', 'ERR_STREAM_DESTROYED'
])

/** Reply errors that say the server cannot serve right now (loading, busy, failing over), not that the request is wrong. */
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/

const UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'AbortError', 'ClusterAllFailedError'])

/**
 * True for the errors that mean Redis is down, unreachable, closed or too slow (answer 503), false for
 * everything else (a WRONGTYPE reply, a bug). Looks through `cause` and AggregateError members.
 */
export function isRedisUnavailable (err: unknown, depth = 0): boolean {
  if (depth > 5 || typeof err !== 'object' || err === null) return false
  const e = err as { name?: unknown, message?: unknown, code?: unknown, cause?: unknown, errors?: unknown }
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true
  if (typeof e.name === 'string' && UNAVAILABLE_NAMES.has(e.name)) return true
  if (typeof e.message === 'string') {
    const message = e.message
    if (UNAVAILABLE_MESSAGES.some((m) => message.startsWith(m))) return true
    if (e.name === 'ReplyError' && UNAVAILABLE_REPLIES.test(message)) return true
  }
  if (Array.isArray(e.errors) && e.errors.some((inner) => isRedisUnavailable(inner, depth + 1))) return true
  return e.cause !== undefined && isRedisUnavailable(e.cause, depth + 1)
}

/** For /health: true only when PING answers PONG within `timeoutMs`. Never throws. */
export async function pingRedis (redis: Redis, timeoutMs = 1000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, timeoutMs, false) })
  try {
    const answer = redis.ping().then((reply) => reply === 'PONG', () => false)
    return await Promise.race([answer, late])
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}
