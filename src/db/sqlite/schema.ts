import { sql } from 'drizzle-orm'
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

import { ROLES, TOKEN_PURPOSES } from '../roles.js'

export { ROLES, type Role } from '../roles.js'

export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  // Stored lower-cased, so the plain unique index is case-insensitive.
  email: text('email').notNull(),
  /** Whether the owner proved the address (a verification link, or a reset link sent to it). */
  emailVerified: integer('email_verified', { mode: 'boolean' }).notNull().default(false),
  username: text('username').notNull(),
  passwordHash: text('password_hash').notNull(),
  role: text('role', { enum: ROLES }).notNull().default('user'),
  isActive: integer('is_active', { mode: 'boolean' }).notNull().default(true),
  bio: text('bio').notNull().default(''),
  avatar: text('avatar'),
  createdAt: text('created_at').notNull(),
  updatedAt: text('updated_at').notNull()
}, (t) => [
  uniqueIndex('users_email_unique').on(t.email),
  // Usernames keep their case for display but are unique regardless of it.
  uniqueIndex('users_username_lower_unique').on(sql`lower(${t.username})`),
  index('users_role_active_idx').on(t.role, t.isActive)
])

/** A login: one chain of rotating refresh tokens and the access tokens issued alongside them. */
export const sessions = sqliteTable('sessions', {
  id: text('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  revokedAt: integer('revoked_at'),
  /** Moved at login and at each refresh, not on every request: the hot path stays one read. */
  lastUsedAt: integer('last_used_at').notNull().default(0),
  /** The client that logged in, as the user may want to recognise it in their session list. */
  ip: text('ip'),
  userAgent: text('user_agent')
}, (t) => [
  index('sessions_user_idx').on(t.userId, t.createdAt),
  index('sessions_expires_idx').on(t.expiresAt)
])

export const refreshTokens = sqliteTable('refresh_tokens', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  sessionId: text('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  // SHA-256 of the whole token: a leaked table cannot be replayed.
  tokenHash: text('token_hash').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [
  uniqueIndex('refresh_tokens_hash_unique').on(t.tokenHash),
  index('refresh_tokens_session_idx').on(t.sessionId)
])

/**
 * Single-use links mailed to a user: e-mail verification, password reset, e-mail change. Only the
 * SHA-256 of the token is stored; `email` is the address the link was sent to (the one it verifies).
 */
export const accountTokens = sqliteTable('account_tokens', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: TOKEN_PURPOSES }).notNull(),
  tokenHash: text('token_hash').notNull(),
  email: text('email').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [
  uniqueIndex('account_tokens_hash_unique').on(t.tokenHash),
  index('account_tokens_user_purpose_idx').on(t.userId, t.purpose)
])

/** Audit entries outlive the users they name, so the ids carry no foreign key. */
export const auditLog = sqliteTable('audit_log', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  actorId: integer('actor_id'),
  action: text('action').notNull(),
  targetType: text('target_type').notNull(),
  targetId: integer('target_id'),
  ip: text('ip'),
  details: text('details', { mode: 'json' }).$type<Record<string, unknown>>().notNull().default({}),
  createdAt: text('created_at').notNull()
})

export type UserRow = typeof users.$inferSelect

export const posts = sqliteTable('posts', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  authorId: integer('author_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  title: text('title').notNull(),
  content: text('content').notNull(),
  // Kept by triggers on likes (see drizzle/sqlite/0002), so cascaded deletes keep it right too.
  likeCount: integer('like_count').notNull().default(0),
  createdAt: text('created_at').notNull(),
  updatedAt: text('updated_at').notNull()
}, (t) => [
  index('posts_author_idx').on(t.authorId, t.id),
  // The ids alone: a page far down the list (`skip`) steps through this small index
  // instead of through the whole rows (about 15× faster at a million posts; see README "Performance").
  index('posts_id_idx').on(t.id)
])

export const likes = sqliteTable('likes', {
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  postId: integer('post_id').notNull().references(() => posts.id, { onDelete: 'cascade' }),
  createdAt: text('created_at').notNull()
}, (t) => [
  // One like per user and post, enforced by the database whatever the timing of requests.
  primaryKey({ columns: [t.userId, t.postId] }),
  index('likes_post_idx').on(t.postId)
])

export type PostRow = typeof posts.$inferSelect

/** Row counts kept by triggers (drizzle/sqlite/0003), so a total needs no count(*). Made by a custom migration. */
export const rowCounts = sqliteTable('row_counts', {
  name: text('name').primaryKey(),
  n: integer('n').notNull()
})
