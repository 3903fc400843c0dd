import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { migrationsFolder } from '../paths.js'
import * as schema from './schema.js'

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

export function openDatabase (path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const sqlite = new Database(path)
  sqlite.pragma('journal_mode = WAL')
  // FULL: an acknowledged write survives a power loss too, not only a crash of the process.
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('foreign_keys = ON')
  // The CLI may write while the server runs: wait for the lock instead of failing at once.
  sqlite.pragma('busy_timeout = 5000')
  return drizzle(sqlite, { schema })
}

export function migrateDatabase (db: Db): void {
  migrate(db, { migrationsFolder })
}

/** Translates SQLite's unique-constraint failure so callers can map it to a 409. */
export function isUniqueViolation (err: unknown): err is Error & { message: string } {
  return typeof err === 'object' && err !== null &&
    (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE'
}

/** A liveness probe prepared once: true while the database answers. */
export function prepareHealthCheck (db: Db): () => boolean {
  const ping = db.$client.prepare('select 1 as ok')
  return () => {
    try {
      return (ping.get() as { ok: number } | undefined)?.ok === 1
    } catch {
      return false
    }
  }
}
