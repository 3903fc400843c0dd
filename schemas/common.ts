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

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO-8601, UTC' })

// Ajv turns "Infinity" and long digit runs into numbers: the upper bound makes them a 400.
export const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 })

export const IdParams = Type.Object({ id: Id })

export const errorResponse = (description: string) => ({ ...ref(ErrorResponse), description })

export const PageQuery = Type.Object({
  skip: Type.Integer({ minimum: 0, maximum: 2_147_483_647, default: 0, description: 'Items to skip' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Items per page, 1 to 100' })
})

/** A named page model (`PostPage`, ...) around a shared item schema, with examples when given. */
export function pageOf<T extends TSchema & { $id?: string }> (item: T, $id: string, examples?: unknown[]) {
  return Type.Object({
    items: Type.Array(ref(item)),
    total: Type.Integer({ minimum: 0 }),
    skip: Type.Integer({ minimum: 0 }),
    limit: Type.Integer({ minimum: 1 }),
    has_more: Type.Boolean()
  }, { $id, title: $id, ...(examples !== undefined && { examples }) })
}
