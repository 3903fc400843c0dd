import Ajv, { type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'

const shared: Options = {
  allErrors: false,
  // Fastify's default strips unknown properties and answers 200; the contract wants a 400.
  removeAdditional: false,
  useDefaults: true,
  strict: false
}

function makeAjv (options: Options) {
  const ajv = new Ajv.default(options)
  addFormats.default(ajv, ['email', 'date-time', 'uri'])
  return ajv
}

interface ObjectSchema { properties?: Record<string, { type?: unknown }> }
const INTEGER_TEXT = /^-?[0-9]+$/

/**
 * Ajv would coerce ' 1', '1e0' or '0x1' into integers; a path or query integer must be plain digits,
 * so that every spelling of a number but one is a 400.
 */
function digitsOnly (validate: ValidateFunction, schema: ObjectSchema, part: string) {
  const integers = Object.entries(schema.properties ?? {}).filter(([, s]) => s.type === 'integer').map(([k]) => k)
  if (integers.length === 0) return validate
  return (data: Record<string, unknown>) => {
    for (const key of integers) {
      const value = data[key]
      if (typeof value === 'string' && !INTEGER_TEXT.test(value)) {
        return { error: Object.assign(new Error(`${part}/${key} must be integer`), { statusCode: 400, code: 'FST_ERR_VALIDATION' }) }
      }
    }
    return validate(data) ? { value: data } : { error: validationError(validate, part) }
  }
}

/** The path of the first string holding a NUL character, which PostgreSQL cannot store in text. */
function nulPath (value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined
  if (typeof value !== 'object' || value === null || depth > 32) return undefined
  for (const [key, item] of Object.entries(value)) {
    const found = nulPath(item, `${path}/${key}`, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/** Refuses NUL characters in any string of a body, on every engine alike, naming the field. */
function withoutNul (validate: ValidateFunction, part: string) {
  return (data: unknown) => {
    const where = nulPath(data, part)
    if (where !== undefined) {
      return { error: Object.assign(new Error(`${where} must not contain NUL characters`), { statusCode: 400, code: 'FST_ERR_VALIDATION' }) }
    }
    return validate(data) ? { value: data } : { error: validationError(validate, part) }
  }
}

/** The first error, naming the field: Ajv's additionalProperties message leaves the property out. */
function validationError (validate: ValidateFunction, part: string) {
  const first = validate.errors?.[0]
  const where = `${part}${first?.instancePath ?? ''}`
  const unknown = first?.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined
  const message = unknown !== undefined ? `${where} has an unknown property ${JSON.stringify(unknown)}` : `${where} ${first?.message ?? 'is invalid'}`
  return Object.assign(new Error(message), { statusCode: 400, code: 'FST_ERR_VALIDATION', validation: validate.errors })
}

/**
 * Checks `data` as a request body would be, outside a request (the CLI's create-user): the first
 * problem in the words a 400 would use, or undefined when the data is valid.
 */
export function bodyProblem (schema: object, data: unknown): string | undefined {
  const validate = withoutNul(makeAjv({ ...shared, coerceTypes: false }).compile(schema), 'body')
  return validate(data).error?.message
}

type Validator = ReturnType<typeof withoutNul> | ReturnType<typeof digitsOnly>

/**
 * The validators compiled for a set of shared schemas, shared by every app that this process builds
 * with the same ones: keyed by their text, then by the part and the schema's text (route files make
 * some schemas afresh). Compiling them is, after the serializers (serialization.ts), most of what
 * building an app costs; a server builds one, a test file up to twenty.
 */
const compilers = new Map<string, (schema: object, part: string) => Validator>()
function compilerFor (schemas: Record<string, unknown>): (schema: object, part: string) => Validator {
  const key = JSON.stringify(schemas)
  const known = compilers.get(key)
  if (known !== undefined) return known
  const strict = makeAjv({ ...shared, coerceTypes: false })
  const coercing = makeAjv({ ...shared, coerceTypes: 'array' })
  for (const s of Object.values(schemas)) {
    strict.addSchema(s as object)
    coercing.addSchema(s as object)
  }
  const compiled = new Map<string, Validator>()
  const compile = (schema: object, part: string): Validator => {
    const text = `${part} ${JSON.stringify(schema)}`
    const found = compiled.get(text)
    if (found !== undefined) return found
    const validate = part === 'body'
      ? withoutNul(strict.compile(schema), 'body')
      : digitsOnly(coercing.compile(schema), schema as ObjectSchema, part)
    compiled.set(text, validate)
    return validate
  }
  compilers.set(key, compile)
  return compile
}

/**
 * Bodies are validated as sent: `"1"` is not a number there. Query strings and path parameters
 * arrive as text, so only they are coerced; 'array' makes a repeated scalar parameter a 400.
 */
export default fp(async (app) => {
  let compile: ReturnType<typeof compilerFor> | undefined
  app.setValidatorCompiler(({ schema, httpPart }) => {
    // The shared schemas are all added by now: the first route compiles after the schemas plugin ran.
    compile ??= compilerFor(app.getSchemas())
    return compile(schema, httpPart ?? 'input')
  })
}, { name: 'validation' })
