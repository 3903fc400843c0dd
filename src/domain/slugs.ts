import { randomBytes } from 'node:crypto'
import { and, eq, inArray, ne } from 'drizzle-orm'
import type { Database } from '../db/index.js'

/** The longest slug made from a title's words (the id, when added, comes on top). */
const SLUG_WORDS_MAX = 80

/**
 * A title's words for a URL: letters without their accents, lower case, digits, joined by `-`, at
 * most 80 characters (cut at a word). A title with none of those (only symbols, or a script without
 * a Latin transliteration) gives `post`.
 */
export function slugOf (title: string): string {
  const words = title.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')
  if (words.length <= SLUG_WORDS_MAX) return words === '' ? 'post' : words
  const cut = words.slice(0, SLUG_WORDS_MAX + 1)
  const lastDash = cut.lastIndexOf('-')
  return lastDash > 0 ? cut.slice(0, lastDash) : words.slice(0, SLUG_WORDS_MAX)
}

/**
 * Gives post `postId` the slug of `title`, inside the transaction that writes the title: the title's
 * words when no other post has them, else the words and the id (`hello-42`), which no other post has
 * unless its own title's words are exactly those; then a random suffix. Two posts racing for the same
 * free words on PostgreSQL: the second fails on the unique index, and its caller runs it again
 * (see createPost), when the first's slug is visible.
 */
export async function assignSlug (tx: Database, postId: number, title: string): Promise<string> {
  const { posts } = tx.t
  const words = slugOf(title)
  const candidates = [words, `${words}-${postId}`]
  const taken = new Set((await tx.q.select({ slug: posts.slug }).from(posts)
    .where(and(inArray(posts.slug, candidates), ne(posts.id, postId)))).map((row) => row.slug))
  const slug = candidates.find((candidate) => !taken.has(candidate)) ?? `${words}-${postId}-${randomBytes(3).toString('hex')}`
  await tx.q.update(posts).set({ slug }).where(eq(posts.id, postId))
  return slug
}

/** A slug no post can have (slugs have no `~`), unique, for the moment between a post's insert and its slug. */
export const provisionalSlug = (): string => `~${randomBytes(12).toString('base64url')}`
