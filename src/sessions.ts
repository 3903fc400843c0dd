import { createHash, randomBytes } from 'node:crypto'
import { and, eq, isNull, lt, sql } from 'drizzle-orm'
import type { Db } from './db/client.js'
import { refreshTokens, sessions, users } from './db/schema.js'
import type { CurrentUser } from './users.js'

export const unixNow = () => Math.floor(Date.now() / 1000)

export function newId (bytes = 16): string {
  return randomBytes(bytes).toString('base64url')
}

export function tokenHash (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

// Each function below writes in one transaction: with synchronous=FULL every commit is an fsync
// on the event loop. Inside a caller's transaction they nest as savepoints, which is how
// plugins/tokens.ts makes a login or a refresh a single commit.

/** Starts a login session; expired sessions are swept here, where logins already pay for argon2. */
export function createSession (db: Db, userId: number, ttl: number): string {
  const id = newId()
  const at = unixNow()
  db.transaction((tx) => {
    tx.delete(sessions).where(lt(sessions.expiresAt, at)).run()
    tx.insert(sessions).values({ id, userId, createdAt: at, expiresAt: at + ttl }).run()
  })
  return id
}

export function recordRefreshToken (db: Db, sessionId: string, token: string, ttl: number): void {
  const at = unixNow()
  db.transaction((tx) => {
    tx.insert(refreshTokens).values({ sessionId, tokenHash: tokenHash(token), createdAt: at, expiresAt: at + ttl }).run()
    tx.update(sessions).set({ expiresAt: at + ttl }).where(eq(sessions.id, sessionId)).run()
  })
}

export type RotationOutcome =
  | { ok: true, userId: number, sessionId: string }
  | { ok: false, reason: 'unknown' | 'expired' | 'revoked' | 'reused' }

/**
 * Marks a refresh token used. Synchronous, so no two requests can both spend one token;
 * a token spent twice is taken as stolen and its whole session ends.
 */
export function spendRefreshToken (db: Db, token: string, sessionId: string): RotationOutcome {
  return db.transaction((tx) => {
    const at = unixNow()
    const row = tx.select({
      id: refreshTokens.id,
      usedAt: refreshTokens.usedAt,
      expiresAt: refreshTokens.expiresAt,
      sessionId: sessions.id,
      userId: sessions.userId,
      revokedAt: sessions.revokedAt
    }).from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, tokenHash(token))).get()
    if (row === undefined || row.sessionId !== sessionId) return { ok: false, reason: 'unknown' }
    if (row.revokedAt !== null) return { ok: false, reason: 'revoked' }
    if (row.usedAt !== null) {
      tx.update(sessions).set({ revokedAt: at }).where(eq(sessions.id, row.sessionId)).run()
      return { ok: false, reason: 'reused' }
    }
    if (row.expiresAt <= at) return { ok: false, reason: 'expired' }
    tx.update(refreshTokens).set({ usedAt: at }).where(eq(refreshTokens.id, row.id)).run()
    return { ok: true, userId: row.userId, sessionId: row.sessionId }
  }, { behavior: 'immediate' })
}

/** Logout: ends the session a refresh token belongs to, whatever state the token is in. */
export function revokeSessionOfToken (db: Db, token: string): void {
  const row = db.select({ sessionId: refreshTokens.sessionId }).from(refreshTokens)
    .where(eq(refreshTokens.tokenHash, tokenHash(token))).get()
  if (row !== undefined) revokeSession(db, row.sessionId)
}

export function revokeSession (db: Db, sessionId: string): void {
  db.update(sessions).set({ revokedAt: unixNow() })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt))).run()
}

export function revokeAllSessions (db: Db, userId: number): void {
  db.update(sessions).set({ revokedAt: unixNow() })
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt))).run()
}

/**
 * The per-request lookup behind `authenticate`: the user, read fresh, and only while the
 * session its token was issued in is still open. Prepared once per database.
 */
export function prepareCurrentUserQuery (db: Db): (userId: number, sessionId: string) => CurrentUser | undefined {
  const query = db.select({
    id: users.id,
    email: users.email,
    username: users.username,
    role: users.role,
    isActive: users.isActive,
    bio: users.bio,
    avatar: users.avatar,
    createdAt: users.createdAt,
    updatedAt: users.updatedAt,
    sessionId: sessions.id
  }).from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(
      eq(sessions.id, sql.placeholder('sessionId')),
      eq(sessions.userId, sql.placeholder('userId')),
      isNull(sessions.revokedAt)
    ))
    .prepare()
  return (userId, sessionId) => query.get({ userId, sessionId })
}
