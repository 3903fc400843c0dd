import type { Database } from './database.js'
import { engineOf } from './engine.js'
import { migratePostgres, openPostgres, type PostgresOptions } from './postgres/engine.js'
import { migrateSqlite, openSqlite } from './sqlite/engine.js'

export type { BuiltQuery, Database, Engine, PostRow, Query, Tables, UserRow } from './database.js'
export { engineOf }

/** The one place the engine is chosen: from DATABASE_URL, once, at start-up. */
export function openDatabase (databaseUrl: string, options: PostgresOptions): Database {
  return engineOf(databaseUrl) === 'postgres' ? openPostgres(databaseUrl, options) : openSqlite(databaseUrl)
}

/** Brings the schema up to date; safe when several processes start at once. */
export async function migrateDatabase (databaseUrl: string): Promise<void> {
  if (engineOf(databaseUrl) === 'postgres') await migratePostgres(databaseUrl)
  else await migrateSqlite(databaseUrl)
}
