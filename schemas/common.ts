import { Type, type Static, type TSchema } from '@sinclair/typebox'

/** A `$ref` to a shared schema, typed as the schema it points at. */
export function ref<T extends TSchema & { $id?: string }> (schema: T) {
  if (schema.$id === undefined) throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>({ $ref: schema.$id })
}

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, examples: [401] }),
  error: Type.String({ examples: ['Unauthorized'] }),
  message: Type.String({ examples: ['Could not validate credentials'] }),
  code: Type.Optional(Type.String({ description: 'A stable machine-readable error code, when there is one', examples: ['FST_ERR_VALIDATION'] }))
}, {
  // Not `Error`: generated clients would declare a type that shadows JavaScript's built-in Error.
  $id: 'ErrorResponse',
  title: 'ErrorResponse',
  description: 'The one shape of every error response',
  examples: [{ statusCode: 401, error: 'Unauthorized', message: 'Could not validate credentials', code: 'INVALID_CREDENTIALS' }]
})

export const Health = Type.Object({ status: Type.Literal('ok') }, {
  $id: 'Health', title: 'Health', description: 'The server, its database and Redis (when configured) answer', examples: [{ status: 'ok' }]
})

/**
 * A string or null (an integer or null), as one JSON Schema type list rather than an `anyOf`: the
 * response serializer (fast-json-stringify) then checks the type inline, where an `anyOf` runs a
 * compiled validator for every value it writes (twenty of them on a page of posts).
 */
export const NullableString = (options: { description?: string } = {}) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], ...options })
export const NullableInteger = (options: { description?: string } = {}) =>
  Type.Unsafe<number | null>({ type: ['integer', 'null'], ...options })

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO-8601, UTC' })

// Ajv turns "Infinity" and long digit runs into numbers: the upper bound makes them a 400.
export const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 })

export const IdParams = Type.Object({ id: Id })

export const errorResponse = (description: string) => ({ ...ref(ErrorResponse), description })

export const PageQuery = Type.Object({
  skip: Type.Integer({ minimum: 0, maximum: 2_147_483_647, default: 0, description: 'Items to skip' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Items per page, 1 to 100' })
})

/** Lists that can also be walked by keyset: `cursor` in, `next_cursor` out (src/domain/pagination.ts). */
export const CursorPageQuery = Type.Object({
  skip: Type.Integer({
    minimum: 0, maximum: 2_147_483_647, default: 0,
    description: 'Items to skip from the start of the list. Not with `cursor` (a `skip` above 0 beside a cursor is a 400): deep pages are cheaper by cursor'
  }),
  limit: PageQuery.properties.limit,
  cursor: Type.Optional(Type.String({
    minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
    description: 'Opaque: the `next_cursor` of the previous page of this same list. The page starts right after the last item that page showed, ' +
      'at the same cost at any depth; posts created since do not appear, and deleted ones are not skipped over twice. ' +
      'A cursor the server did not issue for this list (edited, cut short, from another list) is a 400'
  }))
})

const pageFields = (item: TSchema & { $id?: string }) => ({
  items: Type.Array(ref(item)),
  total: Type.Integer({ minimum: 0, description: 'Items in the whole list' }),
  skip: Type.Integer({ minimum: 0 }),
  limit: Type.Integer({ minimum: 1 }),
  has_more: Type.Boolean({ description: 'Whether items follow this page' })
})

/** A named page model (`AuditPage`, ...) around a shared item schema, with examples when given. */
export function pageOf<T extends TSchema & { $id?: string }> (item: T, $id: string, examples?: unknown[]) {
  return Type.Object(pageFields(item), { $id, title: $id, ...(examples !== undefined && { examples }) })
}

/** A named page model of a list that also takes `cursor` (`PostPage`). */
export function cursorPageOf<T extends TSchema & { $id?: string }> (item: T, $id: string, examples?: unknown[]) {
  return Type.Object({
    ...pageFields(item),
    skip: Type.Integer({ minimum: 0, description: 'The `skip` of the request: 0 on a page asked for by cursor, whose position in the list is not counted' }),
    next_cursor: NullableString({
      description: 'Pass as `cursor` for the page after this one; null on the last page (then `has_more` is false)'
    })
  }, {
    $id,
    title: $id,
    description: '`total` counts the whole list, also on a page asked for by cursor; `has_more` says whether items follow this page',
    ...(examples !== undefined && { examples })
  })
}
