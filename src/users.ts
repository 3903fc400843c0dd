import { httpErrors } from '@fastify/sensible'
import { and, desc, eq, ne, sql } from 'drizzle-orm'
import { isUniqueViolation, type Db } from './db/client.js'
import { recordAudit, type AuditContext } from './audit.js'
import { users, type Role, type UserRow } from './db/schema.js'
import { toPage, type PageRequest } from './pagination.js'
import { hashPassword, isCommonPassword } from './passwords.js'
import { ROLE_PERMISSIONS } from './permissions.js'

export interface NewUser {
  email: string
  username: string
  password: string
  role?: Role
}

export interface ProfileChange {
  email?: string
  username?: string
  bio?: string
}

/** Who is calling: the user row as read on this request, and the session its token belongs to. */
export type CurrentUser = Omit<UserRow, 'passwordHash'> & { sessionId: string }

const now = () => new Date().toISOString()

export function normalizeEmail (email: string): string {
  return email.toLowerCase()
}

export function avatarUrl (avatar: string | null): string | null {
  return avatar === null ? null : `/avatars/${avatar}`
}

export function privateView (user: Omit<UserRow, 'passwordHash'>) {
  return {
    id: user.id,
    email: user.email,
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

export function assertAcceptablePassword (password: string): void {
  if (isCommonPassword(password)) {
    throw httpErrors.badRequest('This password is too common; choose another one')
  }
}

/** Names the field that collided, so the client can say which one to change. */
function conflictFor (db: Db, change: { email?: string, username?: string }, exceptId?: number) {
  const others = exceptId === undefined ? undefined : ne(users.id, exceptId)
  if (change.email !== undefined &&
    db.select({ id: users.id }).from(users).where(and(eq(users.email, change.email), others)).get()) {
    return httpErrors.conflict('Email already registered')
  }
  return httpErrors.conflict('Username already taken')
}

export async function createUser (db: Db, input: NewUser): Promise<UserRow> {
  assertAcceptablePassword(input.password)
  const passwordHash = await hashPassword(input.password)
  const email = normalizeEmail(input.email)
  const at = now()
  try {
    return db.insert(users).values({
      email,
      username: input.username,
      passwordHash,
      role: input.role ?? 'user',
      createdAt: at,
      updatedAt: at
    }).returning().get()
  } catch (err) {
    if (isUniqueViolation(err)) throw conflictFor(db, { email })
    throw err
  }
}

export function findUserById (db: Db, id: number): UserRow | undefined {
  return db.select().from(users).where(eq(users.id, id)).get()
}

/** Login accepts the email or the username, each compared case-insensitively. */
export function findUserByLogin (db: Db, login: string): UserRow | undefined {
  const lowered = login.toLowerCase()
  return db.select().from(users)
    .where(login.includes('@') ? eq(users.email, lowered) : eq(sql`lower(${users.username})`, lowered))
    .get()
}

export function updateProfile (db: Db, id: number, change: ProfileChange): UserRow {
  if (Object.values(change).every((v) => v === undefined)) {
    const user = findUserById(db, id)
    if (user === undefined) throw httpErrors.notFound('User not found')
    return user
  }
  const values = {
    ...change,
    ...(change.email !== undefined && { email: normalizeEmail(change.email) }),
    updatedAt: now()
  }
  try {
    const row = db.update(users).set(values).where(eq(users.id, id)).returning().get()
    if (row === undefined) throw httpErrors.notFound('User not found')
    return row
  } catch (err) {
    if (isUniqueViolation(err)) throw conflictFor(db, values, id)
    throw err
  }
}

export function setPasswordHash (db: Db, id: number, passwordHash: string): void {
  db.update(users).set({ passwordHash, updatedAt: now() }).where(eq(users.id, id)).run()
}

export function countActiveAdmins (db: Db): number {
  return db.select({ n: sql<number>`count(*)` }).from(users)
    .where(and(eq(users.role, 'admin'), eq(users.isActive, true))).get()?.n ?? 0
}

/** Points the user at another avatar file (or none); returns the file it replaced, read in the same transaction. */
export function setAvatar (db: Db, id: number, avatar: string | null): { user: UserRow, previous: string | null } {
  return db.transaction(() => {
    const before = db.select().from(users).where(eq(users.id, id)).get()
    if (before === undefined) throw httpErrors.notFound('User not found')
    // Removing an avatar that is not there changes nothing, updated_at included.
    if (before.avatar === avatar) return { user: before, previous: null }
    const user = db.update(users).set({ avatar, updatedAt: now() }).where(eq(users.id, id)).returning().get()!
    return { user, previous: before.avatar }
  }, { behavior: 'immediate' })
}

/**
 * Deletes a user with everything that cascades from it, and records who did it, in one transaction.
 * Refuses to remove the last active admin, which would leave nobody able to administer.
 * Returns the user's avatar file, for the caller to remove now that the row is gone.
 */
export function deleteUser (db: Db, id: number, ctx: AuditContext): string | null {
  return db.transaction(() => {
    const user = db.select().from(users).where(eq(users.id, id)).get()
    if (user === undefined) throw httpErrors.notFound('User not found')
    if (user.role === 'admin' && user.isActive && countActiveAdmins(db) <= 1) {
      throw httpErrors.conflict('Cannot delete the last active admin')
    }
    // Sessions, refresh tokens, posts and likes go with the row (ON DELETE CASCADE).
    db.delete(users).where(eq(users.id, id)).run()
    recordAudit(db, ctx, {
      action: ctx.actorId === id ? 'user.delete_self' : 'user.delete',
      targetType: 'user',
      targetId: id,
      details: { username: user.username, role: user.role }
    })
    return user.avatar
  }, { behavior: 'immediate' })
}

export interface AdminChange {
  role?: Role
  isActive?: boolean
}

/**
 * Changes a user's role or active flag and audits it, in one transaction. Refuses to leave
 * no active admin behind, whether the admin acts on another account or on their own.
 */
export function changeUserStanding (db: Db, id: number, change: AdminChange, ctx: AuditContext): UserRow {
  return db.transaction(() => {
    const user = db.select().from(users).where(eq(users.id, id)).get()
    if (user === undefined) throw httpErrors.notFound('User not found')
    const role = change.role ?? user.role
    const isActive = change.isActive ?? user.isActive
    const losesAdmin = user.role === 'admin' && user.isActive && (role !== 'admin' || !isActive)
    if (losesAdmin && countActiveAdmins(db) <= 1) {
      throw httpErrors.conflict('Cannot demote or deactivate the last active admin')
    }
    if (role === user.role && isActive === user.isActive) return user
    const updated = db.update(users).set({ role, isActive, updatedAt: now() }).where(eq(users.id, id)).returning().get()!
    const audit = (action: string, from: unknown, to: unknown) =>
      recordAudit(db, ctx, { action, targetType: 'user', targetId: id, details: { from, to } })
    if (role !== user.role) audit('user.role_change', user.role, role)
    if (isActive !== user.isActive) audit('user.activation_change', user.isActive, isActive)
    return updated
  }, { behavior: 'immediate' })
}

export function adminView (user: UserRow) {
  return { ...privateView(user), updated_at: user.updatedAt }
}

export function listUsers (db: Db, page: PageRequest) {
  const rows = db.select().from(users).orderBy(desc(users.id)).limit(page.limit).offset(page.skip).all()
  const total = db.select({ n: sql<number>`count(*)` }).from(users).get()?.n ?? 0
  return toPage(rows.map(adminView), total, page)
}
