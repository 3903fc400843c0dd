import type { Engine } from './database.js'

/**
 * `postgres://` and `postgresql://` URLs are PostgreSQL; anything else is a SQLite file path. Loads no
 * driver, so configuration can ask it before any database is opened.
 */
export function engineOf (databaseUrl: string): Engine {
  return /^postgres(ql)?:\/\//i.test(databaseUrl) ? 'postgres' : 'sqlite'
}
