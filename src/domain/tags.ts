import { asc, desc, eq, gt, inArray, sql } from 'drizzle-orm'
import type { Database } from '../db/index.js'
import { errors } from './errors.js'
import { toPage, type Page, type PageRequest } from './pagination.js'
import { TAG_MAX_LENGTH, TAGS_MAX } from '../policy.js'

/**
 * A tag as stored and compared: Unicode NFC, white space trimmed and runs of it made one space, lower
 * case. So `React`, ` react ` and `REACT` are one tag. A tag is 1 to 32 characters once normalised,
 * without commas (lists of tags are often written comma-separated) or control characters.
 */
export function normalizeTag (raw: string): string {
  const tag = raw.normalize('NFC').trim().replace(/\s+/gu, ' ').toLowerCase()
  if (tag === '' || [...tag].length > TAG_MAX_LENGTH || /[,\p{Cc}]/u.test(tag)) throw errors.invalidTag(raw)
  return tag
}

/** A post's tags, normalised, each once, in the order first given; at most 10. */
export function normalizeTags (raw: readonly string[]): string[] {
  const tags = [...new Set(raw.map(normalizeTag))]
  if (tags.length > TAGS_MAX) throw errors.tooManyTags()
  return tags
}

/**
 * Replaces a post's tags, inside the transaction that writes the post. New tags are made on the way
 * (`on conflict do nothing`: a tag made meanwhile by another post is found by the select that
 * follows); tags.post_count follows through the triggers on post_tags.
 */
export async function setPostTags (tx: Database, postId: number, tags: readonly string[]): Promise<void> {
  const { postTags, tags: tagTable } = tx.t
  await tx.q.delete(postTags).where(eq(postTags.postId, postId))
  if (tags.length === 0) return
  await tx.q.insert(tagTable).values(tags.map((name) => ({ name }))).onConflictDoNothing()
  const found = await tx.q.select({ id: tagTable.id, name: tagTable.name }).from(tagTable).where(inArray(tagTable.name, [...tags]))
  await tx.q.insert(postTags).values(found.map((tag) => ({ postId, tagId: tag.id, position: tags.indexOf(tag.name) })))
}

export interface TagView {
  name: string
  post_count: number
}

/** The tags that posts carry, most used first (ties by name), read from tags_post_count_idx. */
export async function listTags (db: Database, page: PageRequest): Promise<Page<TagView>> {
  const { tags } = db.t
  const used = gt(tags.postCount, 0)
  const [rows, [counted]] = await Promise.all([
    db.q.select({ name: tags.name, post_count: tags.postCount }).from(tags).where(used)
      .orderBy(desc(tags.postCount), asc(tags.name)).limit(page.limit).offset(page.skip),
    db.q.select({ n: sql<number>`cast(count(*) as integer)` }).from(tags).where(used)
  ])
  return toPage(rows, counted?.n ?? 0, page)
}
