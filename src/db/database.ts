import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres'
import type { PgDatabase } from 'drizzle-orm/pg-core'
import type * as tables from './postgres/schema.js'

/**
 * The tables as the domain sees them. Both engines declare the same tables, columns and JavaScript
 * types (src/db/sqlite/schema.ts, src/db/postgres/schema.ts); the domain is typed against one of them.
 */
export type Tables = typeof tables

/**
 * drizzle's query builder, typed with the PostgreSQL dialect. At run time it is the engine's own, so a
 * domain query must use what both dialects share: select/insert/update/delete, joins, `returning`,
 * `onConflictDoNothing`, `sql` fragments of standard SQL, and `await` (or `.prepare(name).execute()`)
 * rather than SQLite's synchronous `.get()`/`.all()`/`.run()`.
 */
export type Query = PgDatabase<NodePgQueryResultHKT, Tables>

export type Engine = 'sqlite' | 'postgres'

/**
 * What an engine gives the domain: queries written once, and the few things that differ, each behind
 * one name. A `Database` handed to `transaction`'s callback is bound to that transaction.
 */
export interface Database {
  readonly engine: Engine
  /**
   * A database server that processes on several machines share (PostgreSQL), rather than a file of
   * this machine: what each process counts in memory alone then undercounts the deployment's total.
   */
  readonly networked: boolean
  /** Queries, on the transaction's connection inside `transaction`. */
  readonly q: Query
  readonly t: Tables
  /**
   * Runs `work` in one transaction, committed when it resolves and rolled back when it throws. Every
   * write goes through here (on SQLite this is also what keeps writes from interleaving on the one
   * connection), so `work` must await nothing but the database: hash passwords and touch files
   * before or after. Nested calls join the outer transaction. On PostgreSQL a transaction that loses
   * a deadlock or serialization race is run again whole, so `work` must have no effect outside it.
   */
  transaction: <T>(work: (tx: Database) => Promise<T>) => Promise<T>
  /**
   * Inside a transaction: waits until no other transaction holds the lock `name`, then holds it until
   * this one ends. For rules that read many rows before writing (the last active admin). On SQLite,
   * where transactions already run one at a time, it does nothing.
   */
  lock: (name: string) => Promise<void>
  /** A statement prepared once per database (the hot paths). Never inside a transaction: it runs on its own connection. */
  prepared: <T>(key: string, build: (q: Query, t: Tables) => T) => T
  /**
   * A read prepared once whose rows come back as arrays, one value per selected field in the order of
   * the select, straight from the driver: drizzle still writes the SQL, but does not map every cell
   * of every row (a sixth of a page of posts' CPU; bench/PROFILING.md). The values are the driver's,
   * alike on both engines: integers and text as the domain wants them, and a boolean column's values
   * true/false (each engine converts its own). `sql.placeholder(name)` values come from `values`.
   * Never inside a transaction.
   */
  preparedRows: (key: string, build: (q: Query, t: Tables) => BuiltQuery) => (values: Record<string, unknown>) => Promise<unknown[][]>
  /** Whether an error is a unique-constraint violation (a duplicate email → 409). */
  isUniqueViolation: (err: unknown) => boolean
  /** Whether an error is a foreign-key violation: the row referred to went away meanwhile. */
  isForeignKeyViolation: (err: unknown) => boolean
  /** Whether an error means the database cannot be reached or is shutting down (→ 503, not 500). */
  isUnavailable: (err: unknown) => boolean
  /** The connection pool's use now, on an engine that has a pool (PostgreSQL); SQLite has none. */
  readonly poolUse?: () => PoolUse
  /** True while the database answers, within about a second; never throws. */
  ping: () => Promise<boolean>
  /** Statements sent so far, and a listener for each: for tests that count or inspect what a route runs. */
  readonly statements: StatementLog
  close: () => Promise<void>
}

export interface PoolUse {
  /** Connections open, idle or lent out. */
  total: number
  idle: number
  /** Queries waiting for a connection because every one is lent out. */
  waiting: number
  /** The most the pool may open (DATABASE_POOL_SIZE). */
  max: number
}

/** A query drizzle has built, not run: its SQL and parameters (placeholders among them). */
export interface BuiltQuery {
  toSQL: () => { sql: string, params: unknown[] }
  /** A select's fields by name, in the order of its columns: their columns say which are booleans. */
  _?: { selectedFields?: Record<string, unknown> }
}

export interface StatementLog {
  count: number
  listener: ((sql: string) => void) | undefined
}

/** A drizzle logger that feeds a StatementLog (cheap: a counter and one optional call). */
export function statementLogger (): { statements: StatementLog, logger: { logQuery: (sql: string) => void } } {
  const statements: StatementLog = { count: 0, listener: undefined }
  return { statements, logger: { logQuery: (sql) => { statements.count++; statements.listener?.(sql) } } }
}

export interface DriverError { code?: unknown, message?: unknown }

/** The error and its causes, outermost first (drizzle wraps a driver's error as DrizzleQueryError's `cause`). */
export function causeChain (err: unknown): DriverError[] {
  const chain: DriverError[] = []
  for (let e = err; chain.length < 4 && typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) {
    chain.push(e as DriverError)
  }
  return chain
}

/** The error a driver raised with a code, whether or not drizzle wrapped it. */
export function driverError (err: unknown): DriverError | undefined {
  return causeChain(err).find((e) => e.code !== undefined)
}

/**
 * What may be logged of an error: a query error without its parameters, which can hold a session id
 * or a password hash; the driver's own error in its place.
 */
export function loggableError (err: unknown): unknown {
  const query = (err as { query?: unknown }).query
  if (typeof err !== 'object' || err === null || typeof query !== 'string') return err
  const { message, code, stack } = (err as { cause?: { message?: string, code?: string, stack?: string } }).cause ?? {}
  return { type: 'DrizzleQueryError', query, message, code, stack }
}

/** A prepared-statement cache for one root database, shared by both engines. */
export function preparedCache (q: Query, t: Tables): Database['prepared'] {
  const cache = new Map<string, unknown>()
  return <T>(key: string, build: (q: Query, t: Tables) => T): T => {
    if (!cache.has(key)) cache.set(key, build(q, t))
    return cache.get(key) as T
  }
}

/** The cache behind `preparedRows`: `prepare` turns a built query into a function that runs it. */
export function preparedRowsCache (q: Query, t: Tables, prepare: (key: string, query: BuiltQuery) => (values: Record<string, unknown>) => Promise<unknown[][]>): Database['preparedRows'] {
  const cache = new Map<string, (values: Record<string, unknown>) => Promise<unknown[][]>>()
  return (key, build) => {
    let run = cache.get(key)
    if (run === undefined) {
      run = prepare(key, build(q, t))
      cache.set(key, run)
    }
    return run
  }
}

export type UserRow = Tables['users']['$inferSelect']
export type PostRow = Tables['posts']['$inferSelect']
