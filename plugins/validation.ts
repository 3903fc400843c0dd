import Ajv, { type Options } from 'ajv'
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

/**
 * Bodies are validated as sent: `"1"` is not a number there. Query strings and path parameters
 * arrive as text, so only they are coerced; 'array' makes a repeated scalar parameter a 400.
 */
export default fp(async (app) => {
  const strict = makeAjv({ ...shared, coerceTypes: false })
  const coercing = makeAjv({ ...shared, coerceTypes: 'array' })
  let sharedSchemasAdded = false

  app.setValidatorCompiler(({ schema, httpPart }) => {
    if (!sharedSchemasAdded) {
      for (const s of Object.values(app.getSchemas())) {
        strict.addSchema(s as object)
        coercing.addSchema(s as object)
      }
      sharedSchemasAdded = true
    }
    const ajv = httpPart === 'body' ? strict : coercing
    return ajv.compile(schema)
  })
}, { name: 'validation' })
