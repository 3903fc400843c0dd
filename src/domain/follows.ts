import { and, eq } from 'drizzle-orm'
import type { Database } from '../db/index.js'
import { errors } from './errors.js'
import { existingUser } from './users.js'

/**
 * `followerId` follows `followeeId` from now on (idempotent: the primary key makes a second follow,
 * however concurrent, a no-op). 404 `User not found` for no such user, also when they go meanwhile;
 * 400 for oneself.
 */
export async function follow (db: Database, followerId: number, followeeId: number): Promise<void> {
  if (followerId === followeeId) throw errors.cannotFollowSelf()
  await existingUser(db, followeeId)
  try {
    await db.transaction((tx) => tx.q.insert(tx.t.follows)
      .values({ followerId, followeeId, createdAt: new Date().toISOString() }).onConflictDoNothing())
  } catch (err) {
    if (db.isForeignKeyViolation(err)) throw errors.userNotFound()
    throw err
  }
}

/** `followerId` no longer follows `followeeId` (idempotent); 404 `User not found` for no such user. */
export async function unfollow (db: Database, followerId: number, followeeId: number): Promise<void> {
  await existingUser(db, followeeId)
  const { follows } = db.t
  await db.transaction((tx) => tx.q.delete(follows).where(and(eq(follows.followerId, followerId), eq(follows.followeeId, followeeId))))
}

export async function isFollowing (db: Database, followerId: number, followeeId: number): Promise<boolean> {
  const { follows } = db.t
  const [row] = await db.q.select({ one: follows.followerId }).from(follows)
    .where(and(eq(follows.followerId, followerId), eq(follows.followeeId, followeeId)))
  return row !== undefined
}
