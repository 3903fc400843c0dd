import type { SerializerFactory } from '@fastify/fast-json-stringify-compiler'
import fastJsonStringify, { type Options } from 'fast-json-stringify'

type Serializer = ReturnType<ReturnType<SerializerFactory>>
type Schemas = Record<string, unknown>

/**
 * Compiled response serializers, shared by every app that this process builds with the same shared
 * schemas: keyed by those schemas' text, then by the response schema's text (route files make many of
 * them afresh, `Type.Ref(ErrorResponse, { description })`). Compiling them is most of what building an
 * app costs (about 150 ms of CPU for Inkwell's routes): once for a server, but once per app in a test
 * file that builds twenty. The output of fast-json-stringify depends on nothing else.
 */
const compiled = new Map<string, Map<string, Serializer>>()

/**
 * Fastify's `schemaController.compilersFactory.buildSerializer`: what Fastify's default does
 * (@fastify/fast-json-stringify-compiler), through the cache above.
 */
export const buildSerializer: SerializerFactory = (externals, serializerOpts = {}) => {
  const externalSchemas = (externals ?? {}) as Schemas
  const key = JSON.stringify([externalSchemas, serializerOpts])
  let cache = compiled.get(key)
  if (cache === undefined) compiled.set(key, cache = new Map())
  const byText = cache
  return ({ schema }) => {
    const text = JSON.stringify(schema)
    const found = byText.get(text)
    if (found !== undefined) return found
    // A route whose schema is itself a shared one: fast-json-stringify refuses it twice under one $id.
    const id = (schema as { $id?: string }).$id
    const external = id !== undefined && id in externalSchemas
      ? Object.fromEntries(Object.entries(externalSchemas).filter(([other]) => other !== id))
      : externalSchemas
    const serialize = fastJsonStringify(schema as object, { ...serializerOpts, schema: external as Options['schema'] })
    byText.set(text, serialize)
    return serialize
  }
}
