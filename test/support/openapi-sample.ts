// Values built from the published OpenAPI schemas, for tests that walk every documented operation.

export type Schema = Record<string, unknown> & {
  $ref?: string
  type?: string | string[]
  properties?: Record<string, Schema>
  required?: string[]
  anyOf?: Schema[]
  enum?: unknown[]
  format?: string
  minLength?: number
  minimum?: number
  examples?: unknown[]
}

export function resolve (schema: Schema, components: Record<string, Schema>): Schema {
  return schema.$ref === undefined ? schema : resolve(components[schema.$ref.replace('#/components/schemas/', '')]!, components)
}

/** A value that satisfies the schema: with `all`, every property, not only the required ones. */
export function sample (schema: Schema, components: Record<string, Schema>, all = false): unknown {
  const s = resolve(schema, components)
  if (s.enum !== undefined) return s.enum[0]
  if (s.anyOf !== undefined) return sample(s.anyOf[0]!, components, all)
  switch (s.type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const keys = all ? Object.keys(s.properties ?? {}) : (s.required ?? [])
      for (const key of keys) out[key] = sample(s.properties![key]!, components, all)
      return out
    }
    case 'integer': case 'number': return s.minimum ?? 1
    case 'boolean': return true
    case 'string':
      if (s.examples?.[0] !== undefined) return s.examples[0]
      if (s.format === 'email') return 'sample@example.com'
      return 'sample-value-long-enough'.slice(0, Math.max(s.minLength ?? 1, 12))
    default: return null
  }
}
