// Seeds a benchmark database: the real migrations, then rows written straight with better-sqlite3
// (SQLite) or with multi-row INSERTs through `pg` (PostgreSQL), the same deterministic rows on both.
// One argon2 hash is computed and shared by every user, so seeding thousands of users takes no time.
import { rmSync } from 'node:fs'
import BetterSqlite from 'better-sqlite3'
import pg from 'pg'
import { migrateDatabase } from '../src/db/index.js'
import { hashPassword } from '../src/domain/passwords.js'

export const BENCH_PASSWORD = 'bench passphrase, not a real one'

export interface SeedOptions {
  users: number
  posts: number
  likes: number
  log?: (line: string) => void
}

export interface SeedSummary {
  users: number
  posts: number
  likes: number
  ms: number
}

/** A small deterministic PRNG (mulberry32), so two runs seed the same data. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const benchUsername = (n: number) => `user${n}`
export const benchEmail = (n: number) => `user${n}@bench.example`

const WORDS = ['fastify', 'sqlite', 'token', 'session', 'argon2', 'index', 'query', 'latency', 'route', 'schema',
  'cursor', 'page', 'writer', 'reader', 'cache', 'plan', 'trigger', 'counter', 'like', 'post']

function text (random: () => number, words: number): string {
  const out: string[] = []
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(random() * WORDS.length)] as string)
  return out.join(' ')
}

const BASE_TIME = Date.UTC(2024, 0, 1)
const isoAt = (n: number) => new Date(BASE_TIME + n * 1000).toISOString()

interface BenchRows {
  users: Array<[id: number, email: string, username: string, bio: string, at: string]>
  posts: Array<[id: number, authorId: number, title: string, content: string, at: string]>
  likes: Array<[userId: number, postId: number, at: string]>
  follows: Array<[followerId: number, followeeId: number, at: string]>
}

/** Each user follows this many others (drawn after the likes, so posts and likes stay as they were). */
const FOLLOWS_PER_USER = 20

/**
 * The seeded rows, the same on every run and on both engines. Post 1..10 belong to user 1, the rest to
 * random users. A like drawn twice is kept once (as `insert or ignore` did), and the draws go on.
 */
function benchRows (options: SeedOptions): BenchRows {
  const random = prng(42)
  const rows: BenchRows = { users: [], posts: [], likes: [], follows: [] }
  for (let n = 1; n <= options.users; n++) rows.users.push([n, benchEmail(n), benchUsername(n), text(random, 8), isoAt(n)])
  postRows(random, 1, options.posts, options.users, (row) => rows.posts.push(row))
  // Likes cluster on recent posts, as they do in life: half of them go to the newest tenth.
  const recent = Math.max(1, Math.floor(options.posts / 10))
  const seen = new Set<number>()
  let attempts = 0
  while (rows.likes.length < options.likes && attempts < options.likes * 4) {
    attempts++
    const userId = 1 + Math.floor(random() * options.users)
    const postId = random() < 0.5
      ? options.posts - Math.floor(random() * recent)
      : 1 + Math.floor(random() * options.posts)
    const key = userId * (options.posts + 1) + postId
    if (seen.has(key)) continue
    seen.add(key)
    rows.likes.push([userId, postId, isoAt(options.users + postId)])
  }
  // Follows, for the feed: each user follows FOLLOWS_PER_USER others (fewer when there are fewer users).
  for (let follower = 1; follower <= options.users; follower++) {
    const followed = new Set<number>()
    const want = Math.min(FOLLOWS_PER_USER, options.users - 1)
    while (followed.size < want) {
      const followee = 1 + Math.floor(random() * options.users)
      if (followee !== follower) followed.add(followee)
    }
    for (const followee of followed) rows.follows.push([follower, followee, isoAt(options.users)])
  }
  return rows
}

function postRows (random: () => number, firstId: number, lastId: number, users: number, push: (row: BenchRows['posts'][number]) => void): void {
  for (let id = firstId; id <= lastId; id++) {
    const authorId = id <= 10 ? 1 : 1 + Math.floor(random() * users)
    push([id, authorId, text(random, 6), text(random, 40), isoAt(users + id)])
  }
}

/**
 * Creates a fresh database file at `path` (removing any old one), applies the migrations and writes
 * the users, posts and likes in one transaction.
 */
export async function seedDatabase (path: string, options: SeedOptions): Promise<SeedSummary> {
  const started = performance.now()
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  const passwordHash = await hashPassword(BENCH_PASSWORD)
  await migrateDatabase(path)
  const rows = benchRows(options)
  const sqlite = new BetterSqlite(path)
  try {
    const insertUser = sqlite.prepare(
      'insert into users (id, email, username, password_hash, role, is_active, bio, created_at, updated_at) ' +
      'values (?, ?, ?, ?, \'user\', 1, ?, ?, ?)')
    const insertPost = sqlite.prepare(
      'insert into posts (id, author_id, title, content, created_at, updated_at, slug) values (?, ?, ?, ?, ?, ?, ?)')
    const insertLike = sqlite.prepare('insert into likes (user_id, post_id, created_at) values (?, ?, ?)')
    const insertFollow = sqlite.prepare('insert into follows (follower_id, followee_id, created_at) values (?, ?, ?)')
    sqlite.transaction(() => {
      for (const [id, email, username, bio, at] of rows.users) insertUser.run(id, email, username, passwordHash, bio, at, at)
      for (const [id, authorId, title, content, at] of rows.posts) insertPost.run(id, authorId, title, content, at, at, `post-${id}`)
      for (const like of rows.likes) insertLike.run(...like)
      for (const follow of rows.follows) insertFollow.run(...follow)
    })()
    sqlite.pragma('wal_checkpoint(TRUNCATE)')
    const ms = Math.round(performance.now() - started)
    options.log?.(`seeded ${options.users} users, ${options.posts} posts, ${rows.likes.length} likes, ${rows.follows.length} follows in ${ms} ms`)
    return { users: options.users, posts: options.posts, likes: rows.likes.length, ms }
  } finally {
    sqlite.close()
  }
}

/**
 * PostgreSQL: (re)creates the database `url` names (only a database whose name contains "bench", so a
 * real one is never dropped), applies the real migrations, and writes the same rows as `seedDatabase`
 * with multi-row INSERTs in one transaction. The triggers are bypassed while loading
 * (`session_replication_role = replica`, which also skips the foreign-key checks of rows known to be
 * consistent), so what they maintain is set afterwards: each post's like_count and the posts counter.
 * The identity sequences are moved past the explicit ids.
 */
export async function seedPostgres (url: string, options: SeedOptions): Promise<SeedSummary> {
  const started = performance.now()
  const name = await dropPostgres(url)
  await onServer(url, `create database "${name}"`)
  const passwordHash = await hashPassword(BENCH_PASSWORD)
  await migrateDatabase(url)
  const rows = benchRows(options)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('begin')
    await client.query('set local session_replication_role = replica')
    await insertMany(client, 'users (id, email, username, password_hash, role, is_active, bio, created_at, updated_at)',
      rows.users.map(([id, email, username, bio, at]) => [id, email, username, passwordHash, 'user', true, bio, at, at]))
    await insertMany(client, 'posts (id, author_id, title, content, created_at, updated_at, slug)',
      rows.posts.map(([id, authorId, title, content, at]) => [id, authorId, title, content, at, at, `post-${id}`]))
    await insertMany(client, 'likes (user_id, post_id, created_at)', rows.likes)
    await insertMany(client, 'follows (follower_id, followee_id, created_at)', rows.follows)
    await client.query('update posts p set like_count = l.n from (select post_id, count(*)::int as n from likes group by post_id) l where l.post_id = p.id')
    await client.query('update row_counts set n = (select count(*) from posts) where name = \'posts\'')
    for (const table of ['users', 'posts']) {
      await client.query(`select setval(pg_get_serial_sequence('${table}', 'id'), (select max(id) from ${table}))`)
    }
    await client.query('commit')
    await client.query('vacuum analyze')
  } catch (err) {
    await client.query('rollback').catch(() => {})
    throw err
  } finally {
    await client.end()
  }
  const ms = Math.round(performance.now() - started)
  options.log?.(`seeded ${options.users} users, ${options.posts} posts, ${rows.likes.length} likes, ${rows.follows.length} follows in ${ms} ms (PostgreSQL, ${name})`)
  return { users: options.users, posts: options.posts, likes: rows.likes.length, ms }
}

/** Drops the benchmark database `url` names, if it exists (only a name containing "bench"); returns the name. */
export async function dropPostgres (url: string): Promise<string> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1))
  if (!/bench/i.test(name) || !/^[A-Za-z0-9_]+$/.test(name)) {
    throw new Error(`the bench drops and recreates its database: its name must contain "bench" (letters, digits, _), got "${name}"`)
  }
  await onServer(url, `drop database if exists "${name}" with (force)`)
  return name
}

/** Runs one statement on the server's `postgres` database (creating and dropping others). */
async function onServer (url: string, statement: string): Promise<void> {
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const client = new pg.Client({ connectionString: admin.toString() })
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end()
  }
}

/** INSERTs `rows` into `target` ("table (columns)") a thousand rows a statement. */
async function insertMany (client: pg.Client, target: string, rows: unknown[][]): Promise<void> {
  const width = rows[0]?.length ?? 0
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000)
    const values = chunk.map((_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`)
    await client.query(`insert into ${target} values ${values.join(', ')}`, chunk.flat())
  }
}

type Sqlite = BetterSqlite.Database

function insertPosts (sqlite: Sqlite, random: () => number, firstId: number, lastId: number, users: number): void {
  const insertPost = sqlite.prepare(
    'insert into posts (id, author_id, title, content, created_at, updated_at, slug) values (?, ?, ?, ?, ?, ?, ?)')
  postRows(random, firstId, lastId, users, ([id, authorId, title, content, at]) => { insertPost.run(id, authorId, title, content, at, at, `post-${id}`) })
}

/**
 * Grows the posts table of a seeded database to `total` rows, in transactions of `batch` rows,
 * reporting progress: the scale run's way to a million posts.
 */
export function growPosts (path: string, total: number, options: { batch?: number, log?: (line: string) => void } = {}): number {
  const batch = options.batch ?? 50_000
  const sqlite = new BetterSqlite(path)
  try {
    const users = (sqlite.prepare('select count(*) as n from users').get() as { n: number }).n
    let have = (sqlite.prepare('select coalesce(max(id), 0) as n from posts').get() as { n: number }).n
    const random = prng(have + 7)
    const started = performance.now()
    while (have < total) {
      const next = Math.min(total, have + batch)
      sqlite.transaction(() => insertPosts(sqlite, random, have + 1, next, users))()
      have = next
      const s = ((performance.now() - started) / 1000).toFixed(1)
      options.log?.(`  posts: ${have.toLocaleString('en')} / ${total.toLocaleString('en')} (${s} s)`)
    }
    sqlite.pragma('wal_checkpoint(TRUNCATE)')
    return have
  } finally {
    sqlite.close()
  }
}
