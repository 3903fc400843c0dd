import { and, count, desc, eq, ne, sql } from 'drizzle-orm'
import type { Database, UserRow } from '../db/index.js'
import { voidAccountTokens } from './account-tokens.js'
import { recordAudit, type AuditContext } from './audit.js'
import { errors } from './errors.js'
import { mfaSummary } from './mfa/summary.js'
import { toPage, type PageRequest } from './pagination.js'
import { hashPassword, passwordProblem } from './passwords.js'
import { ROLE_PERMISSIONS, type Role } from '../policy.js'
import { revokeAllSessions } from './sessions.js'

export interface NewUser {
  email: string
  username: string
  password: string
  role?: Role
  /** Made by an operator (the CLI), who vouches for the address: no verification link needed. */
  emailVerified?: boolean
}

export interface ProfileChange {
  email?: string
  username?: string
  bio?: string
}

/** Who is calling: the user row as read on this request, and the session its token belongs to. */
export type CurrentUser = Omit<UserRow, 'passwordHash'> & {
  sessionId: string
  /** How the calling session was opened (RFC 8176 values, space-separated): see SECOND_FACTORS. */
  sessionAmr: string
}

const now = () => new Date().toISOString()

/** Serializes the rules that count admins, so parallel demotions cannot leave none (PostgreSQL). */
const ADMINS_LOCK = 'inkwell:active-admins'

export function normalizeEmail (email: string): string {
  return email.toLowerCase()
}

export function avatarUrl (avatar: string | null): string | null {
  return avatar === null ? null : `/avatars/${avatar}`
}

export function privateView (user: Omit<UserRow, 'passwordHash'>) {
  return { ...accountFields(user), mfa: mfaSummary(user) }
}

function accountFields (user: Omit<UserRow, 'passwordHash'>) {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    username: user.username,
    bio: user.bio,
    role: user.role,
    is_active: user.isActive,
    avatar_url: avatarUrl(user.avatar),
    permissions: [...ROLE_PERMISSIONS[user.role]],
    created_at: user.createdAt
  }
}

export function publicView (user: Pick<UserRow, 'id' | 'username' | 'bio' | 'avatar' | 'createdAt'>) {
  return {
    id: user.id,
    username: user.username,
    bio: user.bio,
    avatar_url: avatarUrl(user.avatar),
    created_at: user.createdAt
  }
}

/** The registration rules for a new password (RFC 8265 OpaqueString, visible length, common list): 400 otherwise. */
export function assertAcceptablePassword (password: string): void {
  const problem = passwordProblem(password)
  if (problem !== undefined) throw errors.passwordRejected(problem)
}

/** Names the field that collided, so the client can say which one to change. */
async function conflictFor (db: Database, change: { email?: string, username?: string }, exceptId?: number) {
  const { users } = db.t
  const others = exceptId === undefined ? undefined : ne(users.id, exceptId)
  if (change.email !== undefined &&
    (await db.q.select({ id: users.id }).from(users).where(and(eq(users.email, change.email), others))).length > 0) {
    return errors.emailTaken()
  }
  return errors.usernameTaken()
}

/** Runs a write; a unique violation becomes the 409 that names the taken field. */
async function uniquely<T> (db: Database, change: { email?: string, username?: string }, exceptId: number | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write()
  } catch (err) {
    if (db.isUniqueViolation(err)) throw await conflictFor(db, change, exceptId)
    throw err
  }
}

export async function createUser (db: Database, input: NewUser): Promise<UserRow> {
  assertAcceptablePassword(input.password)
  const passwordHash = await hashPassword(input.password)
  const email = normalizeEmail(input.email)
  const at = now()
  const [row] = await uniquely(db, { email }, undefined, () => db.transaction((tx) => tx.q.insert(tx.t.users).values({
    email,
    username: input.username,
    passwordHash,
    role: input.role ?? 'user',
    emailVerified: input.emailVerified ?? false,
    createdAt: at,
    updatedAt: at
  }).returning()))
  if (row === undefined) throw new Error('insert into users returned no row')
  return row
}

export async function findUserById (db: Database, id: number): Promise<UserRow | undefined> {
  const query = db.prepared('user_by_id', (q, { users }) =>
    q.select().from(users).where(eq(users.id, sql.placeholder('id'))).prepare('user_by_id'))
  return (await query.execute({ id }))[0]
}

/** The account with this address, compared as stored (lower-cased). */
export async function findUserByEmail (db: Database, email: string): Promise<UserRow | undefined> {
  const { users } = db.t
  return (await db.q.select().from(users).where(eq(users.email, normalizeEmail(email))))[0]
}

/** The user, or 404 `User not found`. */
export async function existingUser (db: Database, id: number): Promise<UserRow> {
  const user = await findUserById(db, id)
  if (user === undefined) throw errors.userNotFound()
  return user
}

/** The user with this username, compared case-insensitively (users_username_lower_unique). */
export async function findUserByUsername (db: Database, username: string): Promise<UserRow | undefined> {
  const { users } = db.t
  return (await db.q.select().from(users).where(eq(sql`lower(${users.username})`, username.toLowerCase())))[0]
}

/** Login accepts the email or the username, each compared case-insensitively. */
export async function findUserByLogin (db: Database, login: string): Promise<UserRow | undefined> {
  return login.includes('@') ? await findUserByEmail(db, login) : await findUserByUsername(db, login)
}

export async function updateProfile (db: Database, id: number, change: ProfileChange): Promise<UserRow> {
  const { users } = db.t
  if (Object.values(change).every((v) => v === undefined)) return await existingUser(db, id)
  const values = {
    ...change,
    ...(change.email !== undefined && { email: normalizeEmail(change.email) }),
    updatedAt: now()
  }
  const [row] = await uniquely(db, values, id, () => db.transaction((tx) =>
    tx.q.update(users).set(values).where(eq(users.id, id)).returning()))
  if (row === undefined) throw errors.userNotFound()
  return row
}

/**
 * Replaces the password, but only if it is still the one the caller verified (`verifiedHash`):
 * of two concurrent changes, the second finds the hash gone. False when it did not match. The
 * account's reset and e-mail-change links die with the old password. Call inside the transaction
 * that also ends the user's sessions.
 */
export async function replacePasswordHash (tx: Database, id: number, verifiedHash: string, passwordHash: string): Promise<boolean> {
  const { users } = tx.t
  const changed = await tx.q.update(users).set({ passwordHash, updatedAt: now() })
    .where(and(eq(users.id, id), eq(users.passwordHash, verifiedHash))).returning({ id: users.id })
  if (changed.length === 0) return false
  // A reset or e-mail-change link mailed before the change dies with the old password.
  await voidAccountTokens(tx, id, ['password_reset', 'email_change'])
  return true
}

/**
 * Stores the hash of the prepared form of a password that was hashed as typed, if the hash is still
 * `legacyHash` (a concurrent change wins). The password stays the same, so nothing else changes.
 */
export async function upgradePasswordHash (db: Database, id: number, legacyHash: string, password: string): Promise<void> {
  const { users } = db.t
  const passwordHash = await hashPassword(password)
  await db.transaction((tx) => tx.q.update(users).set({ passwordHash })
    .where(and(eq(users.id, id), eq(users.passwordHash, legacyHash))))
}

async function countActiveAdmins (tx: Database): Promise<number> {
  const { users } = tx.t
  const [row] = await tx.q.select({ n: count() }).from(users).where(and(eq(users.role, 'admin'), eq(users.isActive, true)))
  return row?.n ?? 0
}

/**
 * The user read on the transaction's own connection (findUserById's prepared statement runs on
 * another one on PostgreSQL); 404 when there is none.
 */
async function userInTransaction (tx: Database, id: number): Promise<UserRow> {
  const { users } = tx.t
  const [user] = await tx.q.select().from(users).where(eq(users.id, id))
  if (user === undefined) throw errors.userNotFound()
  return user
}

/** Points the user at another avatar file (or none); returns the file it replaced, read in the same transaction. */
export async function setAvatar (db: Database, id: number, avatar: string | null): Promise<{ user: UserRow, previous: string | null }> {
  const { users } = db.t
  return await db.transaction(async (tx) => {
    await tx.lock(`inkwell:avatar:${id}`)
    const before = await userInTransaction(tx, id)
    // Removing an avatar that is not there changes nothing, updated_at included.
    if (before.avatar === avatar) return { user: before, previous: null }
    const [user] = await tx.q.update(users).set({ avatar, updatedAt: now() }).where(eq(users.id, id)).returning()
    return { user: user ?? before, previous: before.avatar }
  })
}

/**
 * Deletes a user with everything that cascades from it, and records who did it, in one transaction.
 * Refuses to remove the last active admin, which would leave nobody able to administer.
 * Returns the user's avatar file, for the caller to remove now that the row is gone.
 */
export async function deleteUser (db: Database, id: number, ctx: AuditContext): Promise<string | null> {
  const { users } = db.t
  return await db.transaction(async (tx) => {
    await tx.lock(ADMINS_LOCK)
    const user = await userInTransaction(tx, id)
    if (user.role === 'admin' && user.isActive && await countActiveAdmins(tx) <= 1) {
      throw errors.lastAdmin('Cannot delete the last active admin')
    }
    // Sessions, refresh tokens, posts and likes go with the row (ON DELETE CASCADE).
    await tx.q.delete(users).where(eq(users.id, id))
    await recordAudit(tx, ctx, {
      action: ctx.actorId === id ? 'user.delete_self' : 'user.delete',
      targetType: 'user',
      targetId: id,
      details: { username: user.username, role: user.role }
    })
    return user.avatar
  })
}

export interface AdminChange {
  role?: Role
  isActive?: boolean
}

/**
 * Changes a user's role or active flag and audits it, in one transaction. Refuses to leave
 * no active admin behind, whether the admin acts on another account or on their own.
 */
export async function changeUserStanding (db: Database, id: number, change: AdminChange, ctx: AuditContext): Promise<UserRow> {
  const { users } = db.t
  return await db.transaction(async (tx) => {
    await tx.lock(ADMINS_LOCK)
    const user = await userInTransaction(tx, id)
    const role = change.role ?? user.role
    const isActive = change.isActive ?? user.isActive
    const losesAdmin = user.role === 'admin' && user.isActive && (role !== 'admin' || !isActive)
    if (losesAdmin && await countActiveAdmins(tx) <= 1) {
      throw errors.lastAdmin('Cannot demote or deactivate the last active admin')
    }
    if (role === user.role && isActive === user.isActive) return user
    const [updated] = await tx.q.update(users).set({ role, isActive, updatedAt: now() }).where(eq(users.id, id)).returning()
    const audit = (action: string, from: unknown, to: unknown) =>
      recordAudit(tx, ctx, { action, targetType: 'user', targetId: id, details: { from, to } })
    if (role !== user.role) await audit('user.role_change', user.role, role)
    if (isActive !== user.isActive) await audit('user.activation_change', user.isActive, isActive)
    // Deactivation ends every session at once; the owner may log in again and sees is_active false.
    if (!isActive && user.isActive) await revokeAllSessions(tx, id)
    return updated ?? user
  })
}

export function adminView (user: UserRow) {
  return { ...accountFields(user), updated_at: user.updatedAt }
}

export async function listUsers (db: Database, page: PageRequest) {
  const { users } = db.t
  const [rows, [counted]] = await Promise.all([
    db.q.select().from(users).orderBy(desc(users.id)).limit(page.limit).offset(page.skip),
    db.q.select({ n: count() }).from(users)
  ])
  return toPage(rows.map(adminView), counted?.n ?? 0, page)
}
