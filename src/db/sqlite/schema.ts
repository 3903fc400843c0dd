import { sql } from 'drizzle-orm'
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

import { ROLES } from '../../policy.js'
import { TOKEN_PURPOSES } from '../purposes.js'

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
  // The second factors at a glance, kept in the transactions that change them (src/domain/mfa/), so the
  // per-request read of the user (GET /users/me included) stays one statement.
  mfaTotp: integer('mfa_totp', { mode: 'boolean' }).notNull().default(false),
  mfaPasskeys: integer('mfa_passkeys').notNull().default(0),
  mfaRecoveryCodes: integer('mfa_recovery_codes').notNull().default(0),
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
  userAgent: text('user_agent'),
  /** How the session was opened (RFC 8176 values, space-separated): 'pwd', 'pwd otp', 'pwd rc', 'hwk'. */
  amr: text('amr').notNull().default('pwd')
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
 * SHA-256 of the token is stored, and a row is deleted once used, voided or expired; `email` is the address the link was sent to (the one it verifies).
 */
export const accountTokens = sqliteTable('account_tokens', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: TOKEN_PURPOSES }).notNull(),
  tokenHash: text('token_hash').notNull(),
  email: text('email').notNull(),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull()
}, (t) => [
  uniqueIndex('account_tokens_hash_unique').on(t.tokenHash),
  index('account_tokens_user_purpose_idx').on(t.userId, t.purpose),
  index('account_tokens_expires_idx').on(t.expiresAt)
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
  /** A short summary for lists ('' when none). */
  description: text('description').notNull().default(''),
  /** Made from the title, unique: the title's words, and the id after them when another post has them (src/domain/slugs.ts). */
  slug: text('slug').notNull(),
  // Kept by triggers on likes (see drizzle/sqlite/0002), so cascaded deletes keep it right too.
  likeCount: integer('like_count').notNull().default(0),
  createdAt: text('created_at').notNull(),
  updatedAt: text('updated_at').notNull()
}, (t) => [
  index('posts_author_idx').on(t.authorId, t.id),
  uniqueIndex('posts_slug_unique').on(t.slug),
  // The ids alone: a page far down the list (`skip`) steps through this small index
  // instead of through the whole rows (about 15× faster at a million posts; see bench/README.md).
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

/**
 * An authenticator app (TOTP, RFC 6238): the secret encrypted (src/domain/mfa/secrets.ts), on once
 * `enabledAt` is set by a confirmed code. `lastStep` is the newest time step accepted: a code of that
 * step or an older one is refused, so no code is accepted twice.
 */
export const totpFactors = sqliteTable('totp_factors', {
  userId: integer('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  secret: text('secret').notNull(),
  enabledAt: integer('enabled_at'),
  lastStep: integer('last_step').notNull().default(0),
  createdAt: integer('created_at').notNull()
})

/** Recovery codes: only a keyed hash of each; a used code's row is deleted. */
export const recoveryCodes = sqliteTable('recovery_codes', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  codeHash: text('code_hash').notNull()
}, (t) => [
  uniqueIndex('recovery_codes_user_hash_unique').on(t.userId, t.codeHash)
])

/**
 * The first step of a login with a second factor: the SHA-256 of the `mfa_token` handed out, the
 * password hash it was issued for (a changed password voids it), and the wrong codes sent so far.
 */
export const mfaChallenges = sqliteTable('mfa_challenges', {
  id: text('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  passwordHash: text('password_hash').notNull(),
  expiresAt: integer('expires_at').notNull(),
  failures: integer('failures').notNull().default(0)
}, (t) => [
  index('mfa_challenges_user_idx').on(t.userId),
  index('mfa_challenges_expires_idx').on(t.expiresAt)
])

/** WebAuthn credentials (passkeys); `credentialId` and `publicKey` base64url, as the library gives them. */
export const passkeys = sqliteTable('passkeys', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  credentialId: text('credential_id').notNull(),
  publicKey: text('public_key').notNull(),
  counter: integer('counter').notNull().default(0),
  /** Comma-separated AuthenticatorTransport values, as the browser reported them. */
  transports: text('transports').notNull().default(''),
  name: text('name').notNull(),
  createdAt: text('created_at').notNull(),
  lastUsedAt: text('last_used_at')
}, (t) => [
  uniqueIndex('passkeys_credential_unique').on(t.credentialId),
  index('passkeys_user_idx').on(t.userId)
])

/**
 * WebAuthn challenges, single use (deleted when spent) and short-lived, kept in the database so that
 * any process can finish a ceremony another began. `userId` is set for a registration, null for a login.
 */
export const webauthnChallenges = sqliteTable('webauthn_challenges', {
  challenge: text('challenge').primaryKey(),
  userId: integer('user_id').references(() => users.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: ['register', 'login'] }).notNull(),
  expiresAt: integer('expires_at').notNull()
}, (t) => [
  index('webauthn_challenges_expires_idx').on(t.expiresAt)
])

/**
 * Tags, normalised (src/domain/tags.ts), with the number of posts that carry each: kept by triggers on
 * post_tags (drizzle/sqlite/), cascaded deletes included, so the list of tags, most used first, is an
 * index walk rather than a count of every post's tags.
 */
export const tags = sqliteTable('tags', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull(),
  postCount: integer('post_count').notNull().default(0)
}, (t) => [
  uniqueIndex('tags_name_unique').on(t.name),
  // Most used first: `post_count desc, name` read straight from the index.
  index('tags_post_count_idx').on(sql`${t.postCount} desc`, t.name)
])

/** A post's tags, in the order its author gave them (`position`). */
export const postTags = sqliteTable('post_tags', {
  postId: integer('post_id').notNull().references(() => posts.id, { onDelete: 'cascade' }),
  tagId: integer('tag_id').notNull().references(() => tags.id, { onDelete: 'cascade' }),
  position: integer('position').notNull()
}, (t) => [
  primaryKey({ columns: [t.postId, t.tagId] }),
  // A tag's posts, newest first: GET /posts?tag= walks this backwards.
  index('post_tags_tag_post_idx').on(t.tagId, t.postId)
])

export const comments = sqliteTable('comments', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  postId: integer('post_id').notNull().references(() => posts.id, { onDelete: 'cascade' }),
  authorId: integer('author_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  body: text('body').notNull(),
  createdAt: text('created_at').notNull(),
  updatedAt: text('updated_at').notNull()
}, (t) => [
  // A post's comments in either order, by offset or by cursor.
  index('comments_post_idx').on(t.postId, t.id),
  // A user's comments go with the user (the cascade looks them up here).
  index('comments_author_idx').on(t.authorId)
])

/** Who follows whom; nobody follows themselves (a check, and src/domain/follows.ts says so first). */
export const follows = sqliteTable('follows', {
  followerId: integer('follower_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  followeeId: integer('followee_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: text('created_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.followerId, t.followeeId] }),
  index('follows_followee_idx').on(t.followeeId, t.followerId),
  check('follows_not_self', sql`${t.followerId} <> ${t.followeeId}`)
])
