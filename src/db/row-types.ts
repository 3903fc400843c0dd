import type * as pgSchema from './postgres/schema.js'
import type * as sqliteSchema from './sqlite/schema.js'

// Both engines declare the same tables (src/db/sqlite/schema.ts, src/db/postgres/schema.ts), and the
// domain is typed against one of them (`Tables`). These types make any drift between the two a
// compile error: a column missing, renamed, nullable on one side, or of another JavaScript type.

/**
 * Each table's row as read (`$inferSelect`) and as written (`$inferInsert`), by export name. Which
 * insert fields are optional is left out: SQLite makes an INTEGER PRIMARY KEY optional (a rowid
 * alias) where PostgreSQL requires it, and the domain sets those keys on both.
 */
type RowTypes<Schema> = {
  [K in keyof Schema as Schema[K] extends { $inferSelect: unknown } ? K : never]:
  Schema[K] extends { $inferSelect: infer Select, $inferInsert: infer Insert } ? { select: Select, insert: Required<Insert> } : never
}

/** True only when A and B are the same type (not merely assignable one way). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

/** `true` when both engines' tables have the same row types; a compile error otherwise. */
export const SAME_ROW_TYPES: Same<RowTypes<typeof sqliteSchema>, RowTypes<typeof pgSchema>> = true
