import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'
import { deleteKeys, uniquePrefix } from './redis.js'

// Which engine the suite runs on: scripts/test.mjs runs it once on SQLite and, when TEST_DATABASE_URL
// is set, once more with TEST_ENGINE=postgres (and Redis when TEST_REDIS_URL is set).
export const TEST_ENGINE = process.env.TEST_ENGINE === 'postgres' ? 'postgres' : 'sqlite'

interface Teardown { teardown: (fn: () => unknown) => void }

const unique = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(6).toString('hex')}`

export function requiredEnv (name: 'TEST_DATABASE_URL' | 'TEST_REDIS_URL'): string {
  const value = process.env[name]
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set: this test needs a real ${name === 'TEST_REDIS_URL' ? 'Redis' : 'PostgreSQL'} (see test/README.md)`)
  }
  return value
}

/** A URL whose connections work in `schema` (created here, dropped with everything in it at teardown). */
export async function postgresSchema (t: Teardown, prefix = 'test'): Promise<string> {
  const base = requiredEnv('TEST_DATABASE_URL')
  const schema = unique(prefix)
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  try {
    await admin.query(`create schema "${schema}"`)
  } finally {
    await admin.end()
  }
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: base })
    await c.connect()
    try {
      await c.query(`drop schema "${schema}" cascade`)
    } finally {
      await c.end()
    }
  })
  const url = new URL(base)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

/** The DATABASE_URL for a test app: `sqliteFile`, or on the PostgreSQL run a schema of its own. */
export async function testDatabase (t: Teardown, sqliteFile: string): Promise<string> {
  return TEST_ENGINE === 'postgres' ? await postgresSchema(t) : sqliteFile
}

/** REDIS_URL and a key prefix of its own (keys removed at teardown), when the run has TEST_REDIS_URL. */
export async function testRedis (t: Teardown, force = false): Promise<Record<string, string>> {
  if (!force && (TEST_ENGINE !== 'postgres' || process.env.TEST_REDIS_URL === undefined)) return {}
  const url = requiredEnv('TEST_REDIS_URL')
  const prefix = uniquePrefix()
  t.teardown(async () => {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 })
    try {
      await deleteKeys(redis, prefix)
    } finally {
      redis.disconnect()
    }
  })
  return { REDIS_URL: url, REDIS_KEY_PREFIX: prefix }
}
