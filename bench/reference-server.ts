// The bar Inkwell is measured against: a hand-written server with no layers of ours. Bare Fastify,
// @fastify/jwt verifying the bearer token (HS256 pinned, the same required claims), and prepared
// statements written by hand for the same answers (the user joined with the session the token names,
// still unrevoked; a page of posts with `liked` and the total): better-sqlite3 for a SQLite file, or a
// `pg` pool (DATABASE_POOL_SIZE connections, 10 by default as in Inkwell) with named prepared queries
// for a postgres:// URL. On PostgreSQL a page is what an expert would send: one statement for the rows,
// `liked` and the total (one round trip), a key search from the page's first id, and generic plans
// planned once per connection (bench/README.md, "PostgreSQL", says why each). No validation, no
// response schemas, no error shape, no hooks: only what a minimal correct route needs. For a fair comparison it answers the same response as Inkwell, written by hand:
// the same body (`next_cursor` with the same HMAC, `email_verified`), the same headers (the security
// headers computed once from helmet as Inkwell does, `x-request-id` with a random UUID as the request id,
// `cache-control: no-store` when a token is sent), and the same logger level (LOG_LEVEL: Fastify then
// makes a child logger per request, as it does for Inkwell). `--bare` drops the headers and the logger.
//
//   DATABASE_URL=... JWT_SECRET=... PORT=... node dist/bench/reference-server.js [--cache]
//
// `--cache` turns on @fastify/jwt's verification cache (`verify: { cache: true }`).
import { randomUUID } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import Database from 'better-sqlite3'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import pg from 'pg'
// (The type import declares the `config` decorator that plugins/security.ts reads; nothing of it runs here.)
import type {} from '../plugins/config.js'
import { API_CSP, helmetHeaders } from '../plugins/security.js'
import { createCursors } from '../src/domain/pagination.js'

interface Claims { sub: string, sid: string, type: string }

interface UserRow {
  id: number
  email: string
  email_verified: number | boolean
  username: string
  bio: string
  role: 'user' | 'moderator' | 'admin'
  is_active: number | boolean
  avatar: string | null
  mfa_totp: number | boolean
  mfa_passkeys: number
  mfa_recovery_codes: number
  created_at: string
}

interface PostRow {
  id: number
  title: string
  description: string
  slug: string
  content: string
  tags: string | null
  like_count: number
  created_at: string
  updated_at: string
  author_id: number
  author_username: string
  author_avatar: string | null
  liked: number | boolean | null
  following: number | boolean | null
}

const USER = ['post:create', 'post:edit_own', 'post:delete_own', 'post:like', 'comment:create', 'comment:delete_own', 'user:follow']
const PERMISSIONS: Record<UserRow['role'], string[]> = {
  user: USER,
  moderator: [...USER, 'post:edit_any', 'post:delete_any', 'comment:delete_any'],
  admin: ['post:create', 'post:edit_own', 'post:delete_own', 'post:like', 'comment:create', 'comment:delete_own', 'user:follow',
    'post:edit_any', 'post:delete_any', 'comment:delete_any', 'user:manage', 'audit:read']
}

const databaseUrl = process.env.DATABASE_URL
const secret = process.env.JWT_SECRET
if (databaseUrl === undefined || secret === undefined) throw new Error('DATABASE_URL and JWT_SECRET are required')
const cache = process.argv.includes('--cache')
const bare = process.argv.includes('--bare')

/** The reads of the hot paths, on either engine. */
interface Store {
  ping: () => Promise<void>
  currentUser: (sessionId: string, userId: number) => Promise<UserRow | undefined>
  /** The page's rows and the total of posts. */
  page: (viewerId: number | undefined, limit: number, skip: number) => Promise<{ rows: PostRow[], total: number }>
  close: () => Promise<void>
}

const userColumns = 'select u.id, u.email, u.email_verified, u.username, u.bio, u.role, u.is_active, u.avatar, ' +
  'u.mfa_totp, u.mfa_passkeys, u.mfa_recovery_codes, u.created_at ' +
  'from sessions s join users u on u.id = s.user_id '
// A post's tags in their author's order, one probe of post_tags by post (string_agg: SQLite 3.44+ too).
const postColumns =
  'select p.id, p.title, p.description, p.slug, p.content, p.like_count, p.created_at, p.updated_at, ' +
  '(select string_agg(t.name, \',\' order by pt.position) from post_tags pt join tags t on t.id = pt.tag_id where pt.post_id = p.id) as tags, ' +
  'u.id as author_id, u.username as author_username, u.avatar as author_avatar, '

function sqliteStore (path: string): Store {
  const db = new Database(path, { fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  const selectOne = db.prepare('select 1')
  const currentUser = db.prepare<[string, number], UserRow>(userColumns + 'where s.id = ? and s.user_id = ? and s.revoked_at is null')
  const pageAnonymous = db.prepare<[number, number], PostRow>(postColumns + 'null as liked, null as following ' +
    'from posts p join users u on u.id = p.author_id order by p.id desc limit ? offset ?')
  const pageViewer = db.prepare<[number, number, number, number], PostRow>(postColumns +
    'exists (select 1 from likes l where l.post_id = p.id and l.user_id = ?) as liked, ' +
    'exists (select 1 from follows f where f.follower_id = ? and f.followee_id = p.author_id) as following ' +
    'from posts p join users u on u.id = p.author_id order by p.id desc limit ? offset ?')
  const postTotal = db.prepare<[], { n: number }>('select n from row_counts where name = \'posts\'')
  return {
    ping: async () => { selectOne.get() },
    currentUser: async (sessionId, userId) => currentUser.get(sessionId, userId),
    // In-process: two statements cost no round trip.
    page: async (viewerId, limit, skip) => ({
      rows: viewerId === undefined ? pageAnonymous.all(limit, skip) : pageViewer.all(viewerId, viewerId, limit, skip),
      total: postTotal.get()?.n ?? 0
    }),
    close: async () => { db.close() }
  }
}

function postgresStore (url: string): Store {
  // Generic plans, planned once per connection: a `limit $1` would otherwise be planned again on
  // every execution, since the generic estimate (a tenth of the table) always looks costlier.
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(process.env.DATABASE_POOL_SIZE ?? 10),
    options: '-c plan_cache_mode=force_generic_plan'
  })
  // Named queries: each connection parses and plans them once, then only binds and executes.
  const run = async <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) =>
    (await pool.query<R>({ name, text, values })).rows
  // The rows from the page's first id down (the same key search at any depth), `liked` as one probe
  // of the likes key per row whoever the viewer, the total from the counter, evaluated once.
  const page = (liked: string, following: string) => postColumns + `${liked} as liked, ${following} as following, ` +
    '(select n::int from row_counts where name = \'posts\') as total ' +
    'from posts p join users u on u.id = p.author_id ' +
    'where p.id <= (select id from posts order by id desc limit 1 offset $2) order by p.id desc limit $1'
  const pageAnonymous = page('null::boolean', 'null::boolean')
  // A correlated scalar, not `exists (...)`, which the planner may turn into a read of all the viewer's likes.
  const pageViewer = page('coalesce((select true from likes l where l.user_id = $3 and l.post_id = p.id), false)',
    'coalesce((select true from follows f where f.follower_id = $3 and f.followee_id = p.author_id), false)')
  return {
    ping: async () => { await run('ping', 'select 1', []) },
    currentUser: async (sessionId, userId) =>
      (await run<UserRow>('current_user', userColumns + 'where s.id = $1 and s.user_id = $2 and s.revoked_at is null', [sessionId, userId]))[0],
    page: async (viewerId, limit, skip) => {
      const rows = viewerId === undefined
        ? await run<PostRow & { total: number }>('page_anonymous', pageAnonymous, [limit, skip])
        : await run<PostRow & { total: number }>('page_viewer', pageViewer, [limit, skip, viewerId])
      // Past the end no row carries the total.
      const total = rows[0]?.total ??
        (await run<{ n: number }>('post_total', 'select n::int as n from row_counts where name = \'posts\'', []))[0]?.n ?? 0
      return { rows, total }
    },
    close: () => pool.end()
  }
}

const db = /^postgres(ql)?:\/\//i.test(databaseUrl) ? postgresStore(databaseUrl) : sqliteStore(databaseUrl)

const app = Fastify(bare
  ? { logger: false }
  : { logger: { level: process.env.LOG_LEVEL ?? 'info' }, genReqId: () => randomUUID() })
// Inkwell's header values (frameguard deny, HSTS a year, CORP same-origin, the API's CSP), computed once.
const securityHeaders = helmetHeaders({
  frameguard: { action: 'deny' },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  contentSecurityPolicy: { useDefaults: false, directives: API_CSP }
})
const cursors = createCursors(secret)
await app.register(fastifyJwt, {
  secret,
  verify: { algorithms: ['HS256'], requiredClaims: ['exp', 'sub', 'sid', 'type'], ...(cache && { cache: true }) }
})

/** The caller, or undefined when the token is missing, invalid or its session is over. */
async function caller (authorization: string | undefined): Promise<UserRow | undefined> {
  if (authorization === undefined || !/^bearer /i.test(authorization)) return undefined
  let claims: Claims
  try {
    claims = app.jwt.verify<Claims>(authorization.slice(7))
  } catch {
    return undefined
  }
  if (claims.type !== 'access') return undefined
  return await db.currentUser(claims.sid, Number(claims.sub))
}

/** The headers every Inkwell response carries. */
function headers (request: FastifyRequest, reply: FastifyReply): void {
  if (bare) return
  reply.headers(securityHeaders).header('x-request-id', request.id)
  if (request.headers.authorization !== undefined) reply.header('cache-control', 'no-store')
}

const avatarUrl = (avatar: string | null) => avatar === null ? null : `/avatars/${avatar}`

app.get('/health', async (request, reply) => {
  headers(request, reply)
  await db.ping()
  return { status: 'ok' }
})

app.get('/users/me', async (request, reply) => {
  headers(request, reply)
  const user = await caller(request.headers.authorization)
  if (user === undefined) {
    return reply.code(401).header('www-authenticate', 'Bearer')
      .send({ statusCode: 401, error: 'Unauthorized', message: 'Could not validate credentials' })
  }
  return {
    id: user.id,
    email: user.email,
    email_verified: user.email_verified === 1 || user.email_verified === true,
    username: user.username,
    bio: user.bio,
    role: user.role,
    is_active: user.is_active === 1 || user.is_active === true,
    avatar_url: avatarUrl(user.avatar),
    permissions: PERMISSIONS[user.role],
    mfa: { totp: user.mfa_totp === 1 || user.mfa_totp === true, passkeys: user.mfa_passkeys, recovery_codes_left: user.mfa_recovery_codes },
    created_at: user.created_at
  }
})

app.get<{ Querystring: { skip?: string, limit?: string } }>('/posts', async (request, reply) => {
  headers(request, reply)
  const skip = Number(request.query.skip ?? 0)
  const limit = Number(request.query.limit ?? 20)
  const viewer = request.headers.authorization === undefined ? undefined : await caller(request.headers.authorization)
  // One row more than the page, as Inkwell reads: whether another page follows.
  const { rows: found, total } = await db.page(viewer?.id, limit + 1, skip)
  const hasMore = found.length > limit
  const rows = hasMore ? found.slice(0, limit) : found
  const last = rows[rows.length - 1]
  return {
    items: rows.map((row) => ({
      id: row.id,
      title: row.title,
      description: row.description,
      slug: row.slug,
      content: row.content,
      tags: row.tags === null ? [] : row.tags.split(','),
      author: {
        id: row.author_id,
        username: row.author_username,
        avatar_url: avatarUrl(row.author_avatar),
        ...(row.following !== null && { following: row.following === 1 || row.following === true })
      },
      like_count: row.like_count,
      ...(row.liked !== null && { liked: row.liked === 1 || row.liked === true }),
      created_at: row.created_at,
      updated_at: row.updated_at
    })),
    total,
    skip,
    limit,
    has_more: hasMore,
    next_cursor: hasMore && last !== undefined ? cursors.issue('posts', last.id) : null
  }
})

process.on('SIGTERM', () => {
  app.close().then(() => db.close()).then(() => process.exit(0), () => process.exit(1))
})

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3100) })
