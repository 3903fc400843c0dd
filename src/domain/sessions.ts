import { and, count, desc, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm'
import type { Database } from '../db/index.js'
import { newId, tokenHash, unixNow } from './ids.js'
import { toPage, type PageRequest } from './pagination.js'
import type { CurrentUser } from './users.js'

/** Who logged in from where, as the user will see it in their list of sessions. */
export interface ClientInfo { ip: string | null, userAgent: string | null }

const USER_AGENT_MAX = 512

/**
 * Starts a login session, but only for a password that is still the account's (`verifiedHash`; null
 * for a passkey login, which only needs the account to exist): the conditional update of the user's
 * row waits for any concurrent password change or deletion of it to commit, and then matches nothing.
 * Returns undefined then (the caller answers 401). `amr` records how the session was opened (RFC 8176).
 * Expired sessions are swept here, where logins already pay for argon2. Call inside a transaction.
 */
export async function createSession (tx: Database, userId: number, verifiedHash: string | null, ttl: number, client: ClientInfo, amr: readonly string[] = ['pwd']): Promise<string | undefined> {
  const { users, sessions } = tx.t
  const still = await tx.q.update(users).set({ passwordHash: sql`${users.passwordHash}` })
    .where(verifiedHash === null ? eq(users.id, userId) : and(eq(users.id, userId), eq(users.passwordHash, verifiedHash))).returning({ id: users.id })
  if (still.length === 0) return undefined
  const id = newId()
  const at = unixNow()
  await tx.q.delete(sessions).where(lt(sessions.expiresAt, at))
  await tx.q.insert(sessions).values({
    id, userId, createdAt: at, expiresAt: at + ttl, lastUsedAt: at, ip: client.ip, userAgent: client.userAgent?.slice(0, USER_AGENT_MAX) ?? null, amr: amr.join(' ')
  })
  return id
}

/** Call inside the transaction that created or rotated the session. */
export async function recordRefreshToken (tx: Database, sessionId: string, token: string, ttl: number): Promise<void> {
  const { refreshTokens, sessions } = tx.t
  const at = unixNow()
  await tx.q.insert(refreshTokens).values({ sessionId, tokenHash: tokenHash(token), createdAt: at, expiresAt: at + ttl })
  await tx.q.update(sessions).set({ expiresAt: at + ttl, lastUsedAt: at }).where(eq(sessions.id, sessionId))
}

export type RotationOutcome =
  | { ok: true, userId: number, sessionId: string }
  | { ok: false, reason: 'unknown' | 'expired' | 'revoked' | 'reused' }

/**
 * Spends a refresh token: one conditional update marks it used, so among any number of concurrent
 * uses, on any number of processes, exactly one matches. A token spent twice is taken as stolen and
 * its whole session ends. Call inside a transaction.
 */
export async function spendRefreshToken (tx: Database, token: string, sessionId: string): Promise<RotationOutcome> {
  const { refreshTokens, sessions } = tx.t
  const at = unixNow()
  const hash = tokenHash(token)
  const [row] = await tx.q.select({
    usedAt: refreshTokens.usedAt,
    expiresAt: refreshTokens.expiresAt,
    sessionId: sessions.id,
    userId: sessions.userId,
    revokedAt: sessions.revokedAt
  }).from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .where(eq(refreshTokens.tokenHash, hash))
  if (row === undefined || row.sessionId !== sessionId) return { ok: false, reason: 'unknown' }
  if (row.revokedAt !== null) return { ok: false, reason: 'revoked' }
  const reused = async () => {
    await tx.q.update(sessions).set({ revokedAt: at }).where(eq(sessions.id, row.sessionId))
    return { ok: false, reason: 'reused' } as const
  }
  if (row.usedAt !== null) return await reused()
  if (row.expiresAt <= at) return { ok: false, reason: 'expired' }
  // The read above may be stale by now: only the update that finds the token unused wins.
  const spent = await tx.q.update(refreshTokens).set({ usedAt: at })
    .where(and(eq(refreshTokens.tokenHash, hash), isNull(refreshTokens.usedAt))).returning({ id: refreshTokens.id })
  // Stryker disable next-line ConditionalExpression: reached only when two transactions read the token at once, which SQLite serializes; test/security/concurrency.test.ts races it on PostgreSQL
  if (spent.length === 0) return await reused()
  return { ok: true, userId: row.userId, sessionId: row.sessionId }
}

/** Logout: ends the session a refresh token belongs to, whatever state the token is in. */
export async function revokeSessionOfToken (db: Database, token: string): Promise<void> {
  const { refreshTokens, sessions } = db.t
  await db.transaction((tx) => tx.q.update(sessions).set({ revokedAt: unixNow() })
    .where(and(
      isNull(sessions.revokedAt),
      inArray(sessions.id, tx.q.select({ id: refreshTokens.sessionId }).from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash(token))))
    )))
}

export async function revokeAllSessions (db: Database, userId: number): Promise<void> {
  const { sessions } = db.t
  await db.transaction((tx) => tx.q.update(sessions).set({ revokedAt: unixNow() })
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt))))
}

/**
 * The per-request lookup behind `authenticate`: the user, read fresh, and only while the session its
 * token was issued in is still open. One prepared statement, one round trip, on either engine.
 */
export function currentUserQuery (db: Database): (userId: number, sessionId: string) => Promise<CurrentUser | undefined> {
  // Rows as arrays, in the order of this select (db.preparedRows): the hottest read of all.
  // Stryker disable next-line StringLiteral: the key only names the statement in the per-database cache; any unused name behaves the same
  const query = db.preparedRows('current_user', (q, { users, sessions }) => q.select({
    id: users.id,
    email: users.email,
    emailVerified: users.emailVerified,
    username: users.username,
    role: users.role,
    isActive: users.isActive,
    bio: users.bio,
    avatar: users.avatar,
    mfaTotp: users.mfaTotp,
    mfaPasskeys: users.mfaPasskeys,
    mfaRecoveryCodes: users.mfaRecoveryCodes,
    createdAt: users.createdAt,
    updatedAt: users.updatedAt,
    sessionId: sessions.id,
    sessionAmr: sessions.amr
  }).from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(
      eq(sessions.id, sql.placeholder('sessionId')),
      eq(sessions.userId, sql.placeholder('userId')),
      isNull(sessions.revokedAt)
    )))
  return async (userId, sessionId) => {
    const row = (await query({ userId, sessionId }))[0] as CurrentUserTuple | undefined
    if (row === undefined) return undefined
    return {
      id: row[0],
      email: row[1],
      emailVerified: row[2],
      username: row[3],
      role: row[4],
      isActive: row[5],
      bio: row[6],
      avatar: row[7],
      mfaTotp: row[8],
      mfaPasskeys: row[9],
      mfaRecoveryCodes: row[10],
      createdAt: row[11],
      updatedAt: row[12],
      sessionId: row[13],
      sessionAmr: row[14]
    }
  }
}

type CurrentUserTuple = [
  id: number, email: string, emailVerified: boolean, username: string, role: CurrentUser['role'],
  isActive: boolean, bio: string, avatar: string | null, mfaTotp: boolean, mfaPasskeys: number, mfaRecoveryCodes: number,
  createdAt: string, updatedAt: string, sessionId: string, sessionAmr: string
]

const iso = (unix: number) => new Date(unix * 1000).toISOString()

/** The user's open sessions (neither ended nor expired), newest first; `current` marks the caller's. */
export async function listSessions (db: Database, userId: number, currentSessionId: string, page: PageRequest) {
  const { sessions } = db.t
  const open = and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, unixNow()))
  const [rows, [counted]] = await Promise.all([
    db.q.select().from(sessions).where(open).orderBy(desc(sessions.createdAt), desc(sessions.id)).limit(page.limit).offset(page.skip),
    db.q.select({ n: count() }).from(sessions).where(open)
  ])
  return toPage(rows.map((s) => ({
    id: s.id,
    created_at: iso(s.createdAt),
    last_used_at: iso(s.lastUsedAt),
    expires_at: iso(s.expiresAt),
    ip: s.ip,
    user_agent: s.userAgent,
    amr: s.amr.split(' '),
    current: s.id === currentSessionId
  })), counted?.n ?? 0, page)
}

/** Ends one of the user's open sessions, as a logout would; false when the user has no such open session. */
export async function endSession (db: Database, userId: number, sessionId: string): Promise<boolean> {
  const { sessions } = db.t
  const ended = await db.transaction((tx) => tx.q.update(sessions).set({ revokedAt: unixNow() })
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, unixNow())))
    .returning({ id: sessions.id }))
  return ended.length > 0
}
