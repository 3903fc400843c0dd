import { createHmac, timingSafeEqual } from 'node:crypto'
import { errors } from './errors.js'

export interface PageRequest {
  skip: number
  limit: number
}

export interface Page<T> {
  items: T[]
  total: number
  skip: number
  limit: number
  has_more: boolean
}

export function toPage<T> (items: T[], total: number, { skip, limit }: PageRequest): Page<T> {
  return { items, total, skip, limit, has_more: skip + items.length < total }
}

/** A page that can be continued by keyset: `next_cursor` names where the next one starts. */
export interface CursorPage<T> extends Page<T> {
  next_cursor: string | null
}

/** A request for a page of a list that also takes `cursor` (the `next_cursor` of its previous page). */
export interface CursorPageRequest extends PageRequest {
  cursor?: string | undefined
}

/**
 * Where a page of `list` starts: after the id its cursor names (and `skip` is then 0), or `skip` items
 * down. A cursor beside a `skip` above 0 is refused, and so is a cursor `list` did not issue.
 */
export function pageStart (cursors: Cursors, list: string, request: CursorPageRequest): { after: number | undefined, skip: number } {
  if (request.cursor === undefined) return { after: undefined, skip: request.skip }
  if (request.skip > 0) throw errors.cursorWithSkip()
  return { after: cursors.read(list, request.cursor), skip: 0 }
}

/**
 * The page out of `found`, read one row past `limit` (that row says whether another page follows,
 * whatever the total says meanwhile), and the cursor of the next page: the last row's id in `list`.
 */
export function pageEnd<T> (found: T[], limit: number, cursors: Cursors, list: string, idOf: (row: T) => number): { rows: T[], hasMore: boolean, next: string | null } {
  const hasMore = found.length > limit
  const rows = hasMore ? found.slice(0, limit) : found
  const last = rows[rows.length - 1]
  return { rows, hasMore, next: hasMore && last !== undefined ? cursors.issue(list, idOf(last)) : null }
}

/**
 * Keyset cursors: `<payload>.<tag>`, both base64url. The payload is the last id a page showed; the tag
 * is an HMAC-SHA256 (truncated to 128 bits) of the list's name and that payload, keyed with a key of its
 * own derived from JWT_SECRET. So a cursor only works on the list that issued it, and one the server did
 * not issue (forged, edited, cut short, from another list) is refused: the client cannot pick the id.
 */
export interface Cursors {
  /** The cursor that continues `list` after the item `lastId`. */
  issue: (list: string, lastId: number) => string
  /** The last id a cursor of `list` names; a 400 naming `querystring/cursor` if the server did not issue it. */
  read: (list: string, cursor: string) => number
}

const TAG_BYTES = 16
// Ids are positive 32-bit integers everywhere (schemas/common.ts `Id`).
const PAYLOAD = /^1:([1-9][0-9]{0,9})$/
const MAX_ID = 2_147_483_647


export function createCursors (secret: string): Cursors {
  const key = createHmac('sha256', secret).update('inkwell:page-cursor:v1').digest()
  const tag = (list: string, payload: string) => createHmac('sha256', key).update(`${list}\n${payload}`).digest().subarray(0, TAG_BYTES)
  return {
    issue (list, lastId) {
      const payload = `1:${lastId}`
      return `${Buffer.from(payload).toString('base64url')}.${tag(list, payload).toString('base64url')}`
    },
    read (list, cursor) {
      const dot = cursor.indexOf('.')
      if (dot < 0) throw errors.invalidCursor()
      const payload = Buffer.from(cursor.slice(0, dot), 'base64url').toString('latin1')
      const given = Buffer.from(cursor.slice(dot + 1), 'base64url')
      // Decoding is lenient (it skips stray characters): re-encoding must give back exactly what was sent.
      if (`${Buffer.from(payload, 'latin1').toString('base64url')}.${given.toString('base64url')}` !== cursor) throw errors.invalidCursor()
      if (given.length !== TAG_BYTES || !timingSafeEqual(given, tag(list, payload))) throw errors.invalidCursor()
      const id = Number(PAYLOAD.exec(payload)?.[1])
      if (!Number.isInteger(id) || id > MAX_ID) throw errors.invalidCursor()
      return id
    }
  }
}
