import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import BetterSqlite from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { migrationsRoot } from '../../paths.js'
import { fillPlaceholders } from 'drizzle-orm'
import { driverError, preparedCache, preparedRowsCache, statementLogger, type Database, type Query, type Tables } from '../database.js'
import * as schema from './schema.js'

const migrationsFolder = join(migrationsRoot, 'sqlite')

/**
 * The SQLite builder and tables as the domain's `Query` and `Tables`, which are typed with the
 * PostgreSQL dialect. TypeScript cannot relate the two dialects' classes, so this is the one conversion
 * between them. What makes it sound is checked elsewhere: SAME_ROW_TYPES (../row-types.ts) fails the
 * build when a table's rows differ between the engines, and test/db runs the shared cases on both.
 */
function asShared (db: BetterSQLite3Database<typeof schema>): { q: Query, t: Tables } {
  return { q: db as unknown as Query, t: schema as unknown as Tables }
}

/** Each open database's connection, for sqliteClientOf. */
const clients = new WeakMap<Query, BetterSqlite.Database>()
const UNIQUE = /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY)/

/**
 * SQLite through better-sqlite3: one connection, WAL, foreign keys on. Its statements run synchronously,
 * so a transaction is one BEGIN IMMEDIATE … COMMIT on that connection, and transactions (every write)
 * take turns: while one awaits its next statement, no other request's write can slip into it.
 */
export function openSqlite (path: string): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const client = new BetterSqlite(path)
  client.pragma('journal_mode = WAL')
  // FULL: an acknowledged write survives a power loss too, not only a crash of the process.
  client.pragma('synchronous = FULL')
  client.pragma('foreign_keys = ON')
  // The CLI or another process may write meanwhile: wait for the lock instead of failing at once.
  client.pragma('busy_timeout = 5000')
  // A memory database lives on this connection only, so it is migrated here (migrateSqlite skips it).
  if (path === ':memory:') migrate(drizzle(client), { migrationsFolder })

  const { statements, logger } = statementLogger()
  // Prepared once: /health runs it on every probe.
  const ping = client.prepare('select 1 as ok')
  const { q, t } = asShared(drizzle(client, { schema, logger }))
  clients.set(q, client)

  let queue: Promise<unknown> = Promise.resolve()
  /** Runs `work` after every transaction queued before it has ended. */
  function inTurn<T> (work: () => Promise<T>): Promise<T> {
    const turn = queue.then(work)
    queue = turn.catch(() => undefined)
    return turn
  }

  const base = {
    engine: 'sqlite' as const,
    networked: false,
    q,
    t,
    statements,
    lock: async () => {},
    prepared: preparedCache(q, t),
    // better-sqlite3's raw mode: each row an array, without an object per row. SQLite stores booleans
    // as 0/1: the boolean columns among the selected fields are turned into true/false here, as
    // PostgreSQL's driver returns them, so the domain reads both engines' rows alike.
    preparedRows: preparedRowsCache(q, t, (_key, query) => {
      const { sql, params } = query.toSQL()
      const statement = client.prepare(sql).raw()
      const booleans = Object.values(query._?.selectedFields ?? {}).flatMap((field, i) =>
        (field as { columnType?: string }).columnType === 'SQLiteBoolean' ? [i] : [])
      return async (values) => {
        logger.logQuery(sql)
        const rows = statement.all(...fillPlaceholders(params, values)) as unknown[][]
        if (booleans.length > 0) {
          for (const row of rows) for (const i of booleans) row[i] = row[i] === 1
        }
        return rows
      }
    }),
    isUniqueViolation: (err: unknown) => UNIQUE.test(String(driverError(err)?.code ?? '')),
    isForeignKeyViolation: (err: unknown) => driverError(err)?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY',
    isUnavailable: (err: unknown) => UNAVAILABLE.test(String(driverError(err)?.code ?? '')),
    ping: async () => {
      try {
        return (ping.get() as { ok: number } | undefined)?.ok === 1
      } catch {
        return false
      }
    },
    close: async () => {
      await queue
      if (client.open) client.close()
    }
  }
  const inTransaction: Database = {
    ...base,
    transaction: (work) => work(inTransaction)
  }
  return {
    ...base,
    transaction: (work) => inTurn(async () => {
      client.exec('BEGIN IMMEDIATE')
      try {
        const result = await work(inTransaction)
        client.exec('COMMIT')
        return result
      } catch (err) {
        if (client.inTransaction) client.exec('ROLLBACK')
        throw err
      }
    })
  }
}

export async function migrateSqlite (path: string): Promise<void> {
  if (path === ':memory:') return
  mkdirSync(dirname(path), { recursive: true })
  const client = new BetterSqlite(path)
  try {
    client.pragma('busy_timeout = 5000')
    // Several processes starting at once on one file: the migrator's own transaction serializes them.
    migrate(drizzle(client), { migrationsFolder })
  } finally {
    client.close()
  }
}

/** The raw connection, for SQLite-only checks (query plans) in tests. */
export function sqliteClientOf (db: Database): BetterSqlite.Database {
  const client = clients.get(db.q)
  if (client === undefined) throw new Error('not a SQLite database')
  return client
}
