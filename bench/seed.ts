// Seeds a benchmark database: the real migrations, then rows written straight with better-sqlite3.
// One argon2 hash is computed and shared by every user, so seeding thousands of users takes no time.
import { rmSync } from 'node:fs'
import BetterSqlite from 'better-sqlite3'
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

/**
 * Creates a fresh database file at `path` (removing any old one), applies the migrations and writes
 * the users, posts and likes in one transaction. Post 1..10 belong to user 1, the rest to random users.
 */
export async function seedDatabase (path: string, options: SeedOptions): Promise<SeedSummary> {
  const started = performance.now()
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  const passwordHash = await hashPassword(BENCH_PASSWORD)
  await migrateDatabase(path)
  const sqlite = new BetterSqlite(path)
  try {
    const random = prng(42)
    const insertUser = sqlite.prepare(
      'insert into users (id, email, username, password_hash, role, is_active, bio, created_at, updated_at) ' +
      'values (?, ?, ?, ?, \'user\', 1, ?, ?, ?)')
    const insertLike = sqlite.prepare('insert or ignore into likes (user_id, post_id, created_at) values (?, ?, ?)')

    let likes = 0
    sqlite.transaction(() => {
      for (let n = 1; n <= options.users; n++) {
        const at = isoAt(n)
        insertUser.run(n, benchEmail(n), benchUsername(n), passwordHash, text(random, 8), at, at)
      }
      insertPosts(sqlite, random, 1, options.posts, options.users)
      // Likes cluster on recent posts, as they do in life: half of them go to the newest tenth.
      const recent = Math.max(1, Math.floor(options.posts / 10))
      let attempts = 0
      while (likes < options.likes && attempts < options.likes * 4) {
        attempts++
        const userId = 1 + Math.floor(random() * options.users)
        const postId = random() < 0.5
          ? options.posts - Math.floor(random() * recent)
          : 1 + Math.floor(random() * options.posts)
        likes += insertLike.run(userId, postId, isoAt(options.users + postId)).changes
      }
    })()
    sqlite.pragma('wal_checkpoint(TRUNCATE)')
    const ms = Math.round(performance.now() - started)
    options.log?.(`seeded ${options.users} users, ${options.posts} posts, ${likes} likes in ${ms} ms`)
    return { users: options.users, posts: options.posts, likes, ms }
  } finally {
    sqlite.close()
  }
}

type Sqlite = BetterSqlite.Database

function insertPosts (sqlite: Sqlite, random: () => number, firstId: number, lastId: number, users: number): void {
  const insertPost = sqlite.prepare(
    'insert into posts (id, author_id, title, content, created_at, updated_at) values (?, ?, ?, ?, ?, ?)')
  for (let id = firstId; id <= lastId; id++) {
    const authorId = id <= 10 ? 1 : 1 + Math.floor(random() * users)
    const at = isoAt(users + id)
    insertPost.run(id, authorId, text(random, 6), text(random, 40), at, at)
  }
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
