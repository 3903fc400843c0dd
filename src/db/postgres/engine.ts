import { join } from 'node:path'
import { fillPlaceholders, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import pg from 'pg'
import { migrationsRoot } from '../../paths.js'
import { causeChain, driverError, preparedCache, preparedRowsCache, statementLogger, type Database, type Query, type Tables } from '../database.js'
import * as schema from './schema.js'
import { describeError, redactUrl, StartupError } from '../../startup.js'

export interface PostgresOptions {
  poolSize: number
  /** Where a dropped idle connection is reported; the pool replaces it by itself. */
  log?: { warn: (obj: object, msg: string) => void }
}

// Class 08 (connection exception), 57P01-57P03 (shutdown, cannot connect now), 53300 (too many
// connections), 57014 (our statement_timeout fired).
const UNAVAILABLE_CODES = /^(08...|57P0[1-3]|53300|57014|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH)$/
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Connection ended|the database system is (starting up|shutting down)/

// 40P01 deadlock_detected, 40001 serialization_failure: the transaction lost a race with another and
// was rolled back whole, so running it again is safe (a like racing the cascade of its post's deletion).
const RETRYABLE = new Set(['40P01', '40001'])
const ATTEMPTS = 5

/** Runs `run` again, after a short random wait, while it fails with a deadlock or serialization error. */
async function retryingRaces<T> (run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      if (attempt >= ATTEMPTS || !RETRYABLE.has(String(driverError(err)?.code))) throw err
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt))
    }
  }
}

/** Whether any error in the chain (drizzle's, then node-postgres's) says the server cannot be reached. */
export function isPostgresUnavailable (err: unknown): boolean {
  return causeChain(err).some((e) => UNAVAILABLE_CODES.test(String(e.code ?? '')) || UNAVAILABLE_MESSAGES.test(String(e.message ?? '')))
}

// Every named statement runs its generic plan, planned once per connection: the plans that
// test/db/query-plans.test.ts checks. By default PostgreSQL plans a statement again for its parameter
// values whenever the generic plan's estimate looks costlier, which a `LIMIT $n` always does (it guesses
// a tenth of the table), so every page paid for its planning again (bench/README.md, "PostgreSQL").
const GENERIC_PLANS = '-c plan_cache_mode=force_generic_plan'

/**
 * The URL with GENERIC_PLANS among its startup options. node-postgres lets the URL's `options` win over
 * the config's, so they go in the URL, before any the operator gave (a later `-c` wins, so theirs do).
 */
export function withGenericPlans (url: string): string {
  const parsed = new URL(url)
  const given = parsed.searchParams.get('options')
  parsed.searchParams.set('options', given === null ? GENERIC_PLANS : `${GENERIC_PLANS} ${given}`)
  return parsed.toString()
}

/** Fails fast instead of hanging: a request gets its 503 long before the 60 s request timeout. */
function poolConfig (url: string, poolSize: number): pg.PoolConfig {
  return {
    connectionString: withGenericPlans(url),
    max: poolSize,
    connectionTimeoutMillis: 3_000,
    // Server side: no statement runs longer than this (the client side is watchQueries).
    statement_timeout: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true
  }
}

/** How long a query may go unanswered before its connection is taken for dead (statement_timeout is 10 s). */
export const QUERY_TIMEOUT_MS = 15_000

/** What watchQueries reads of a node-postgres client: its query in progress, and its socket. */
interface Watched { _activeQuery?: unknown, connection: { stream: { destroy: (err?: Error) => void } } }

/**
 * The client side of a dead network: a query unanswered for `timeoutMs` (the server cancels its own
 * statements after 10 s, so only a connection that no longer answers gets here) fails with its
 * connection, which is destroyed; the pool replaces it. One timer for the pool, looking each second,
 * instead of node-postgres's `query_timeout`, which arms a 15 s timer per query: under load those
 * timers kept every query's objects alive past the young generation, and the collector's copying
 * cost a page more CPU than anything else Inkwell does (bench/README.md, "PostgreSQL").
 * It reads `_activeQuery`, which node-postgres 8 keeps private: test/services/faults.test.ts (the
 * black hole) fails if that changes.
 */
function watchQueries (pool: pg.Pool, timeoutMs: number): () => void {
  // Each connection, with the query it was last seen running and since when (undefined: none).
  const watched = new Map<pg.PoolClient & Watched, { query: unknown, since: number } | undefined>()
  pool.on('connect', (client) => {
    watched.set(client as pg.PoolClient & Watched, undefined)
    // A connection destroyed while checked out emits 'error' (the pool listens only while idle);
    // its query has already failed with it, and releasing it with that error removes it.
    client.on('error', () => {})
  })
  pool.on('remove', (client) => { watched.delete(client as pg.PoolClient & Watched) })
  const timer = setInterval(() => {
    const now = Date.now()
    for (const [client, last] of watched) {
      const query = client._activeQuery
      if (query === undefined || query === null) watched.set(client, undefined)
      else if (last?.query !== query) watched.set(client, { query, since: now })
      else if (now - last.since >= timeoutMs) {
        watched.set(client, undefined)
        client.connection.stream.destroy(new Error('Query read timeout'))
      }
    }
  }, 1_000).unref()
  return () => clearInterval(timer)
}

/**
 * PostgreSQL through node-postgres: a pool of `poolSize` connections, transactions on one pooled
 * connection each (READ COMMITTED; `lock` is a transaction-scoped advisory lock).
 */
export function openPostgres (url: string, options: PostgresOptions): Database {
  const pool = new pg.Pool(poolConfig(url, options.poolSize))
  const unwatch = watchQueries(pool, QUERY_TIMEOUT_MS)
  // An idle connection that the server closes must not crash the process; the pool makes a new one.
  pool.on('error', (err) => options.log?.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'PostgreSQL connection lost'))

  const { statements, logger } = statementLogger()
  const root = drizzle(pool, { schema, logger })
  const t: Tables = schema

  const base = {
    engine: 'postgres' as const,
    networked: true,
    t,
    statements,
    prepared: preparedCache(root, t),
    // A named statement per connection, as drizzle's prepare makes, with rows as arrays.
    preparedRows: preparedRowsCache(root, t, (key, query) => {
      const { sql: text, params } = query.toSQL()
      return async (values) => {
        logger.logQuery(text)
        return (await pool.query<unknown[]>({ name: `rows_${key}`, text, values: fillPlaceholders(params, values), rowMode: 'array' })).rows
      }
    }),
    isUniqueViolation: (err: unknown) => driverError(err)?.code === '23505',
    isForeignKeyViolation: (err: unknown) => driverError(err)?.code === '23503',
    isUnavailable: isPostgresUnavailable,
    poolUse: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: options.poolSize }),
    ping: async () => {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<false>((resolve) => { timer = setTimeout(resolve, 1_000, false) })
      try {
        return await Promise.race([pool.query('select 1').then(() => true, () => false), timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    close: async () => {
      unwatch()
      if (!pool.ended) await pool.end()
    }
  }

  function bound (q: Query, inTransaction: boolean): Database {
    const db: Database = {
      ...base,
      q,
      transaction: inTransaction
        ? (work) => work(db)
        : (work) => retryingRaces(() => q.transaction((tx) => work(bound(tx, true)))),
      lock: async (name) => {
        if (!inTransaction) throw new Error('lock() holds until the transaction ends: call it inside one')
        await q.execute(sql`select pg_advisory_xact_lock(hashtext(${name}))`)
      }
    }
    return db
  }
  return bound(root, false)
}

/**
 * Applies the migrations once however many processes start together: each waits for a session-level
 * advisory lock, and the ones that get it after the first find nothing left to do. The migrations
 * table lives in the connection's current schema, beside the tables (a schema per test, or a team's own).
 */
export async function migratePostgres (url: string): Promise<void> {
  const client = new pg.Client({ ...poolConfig(url, 1), statement_timeout: 0 })
  try {
    await client.connect()
  } catch (err) {
    // Unreachable, a database or role that does not exist, a wrong password: the operator's to fix.
    throw new StartupError('DATABASE_URL', `cannot connect to PostgreSQL at ${redactUrl(url)}: ${describeError(err)}`, { cause: err })
  }
  try {
    await client.query('select pg_advisory_lock(hashtext($1))', ['inkwell:migrate'])
    const { rows } = await client.query<{ schema: string | null }>('select current_schema() as schema')
    const current = rows[0]?.schema
    if (current === null || current === undefined) throw new StartupError('DATABASE_URL', 'the connection has no current schema (check its search_path)')
    await migrate(drizzle(client), { migrationsFolder: join(migrationsRoot, 'postgres'), migrationsSchema: current })
  } finally {
    await client.end()
  }
}
