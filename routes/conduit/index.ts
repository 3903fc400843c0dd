import fastifySwagger from '@fastify/swagger'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifySchema } from 'fastify'
import authRateLimit from '../../plugins/auth-rate-limit.js'
import { guardsOf, useAuthScheme } from '../../plugins/auth.js'
import { conduitError } from '../../schemas/conduit.js'
import articlesRoutes from './articles.js'
import profilesRoutes from './profiles.js'
import usersRoutes from './users.js'

/** The Conduit API's security scheme: `Authorization: Token <jwt>`, as its specification names it. */
const TOKEN_SCHEME = 'Token' as const

/**
 * A Conduit error body for an Inkwell one: `{"errors": {"body": [message]}}`. A second factor cannot be
 * given through Conduit's login, so that refusal says where to log in instead (and hands out no `mfa_token`).
 */
function conduitMessage (error: { message: string, code?: string }): string {
  if (error.code === 'MFA_REQUIRED') return 'This account has a second factor: log in through POST /auth/token (grant_type=password, then mfa_otp)'
  return error.message
}

/** Inkwell's one error shape (plugins/errors.ts): `{statusCode, error, message, code?}`. */
function isInkwellError (payload: unknown): payload is { message: string, code?: string } {
  return typeof payload === 'object' && payload !== null && typeof (payload as { message?: unknown }).message === 'string' &&
    typeof (payload as { statusCode?: unknown }).statusCode === 'number'
}

/**
 * Security and the 401/403/422 responses, derived from the guards the route runs, as Inkwell's own
 * document derives them (plugins/swagger.ts), in Conduit's shapes.
 */
function documentConduitRoute (schema: FastifySchema | undefined, preHandler: unknown): FastifySchema {
  const guards = guardsOf(preHandler)
  const responses: Record<string, unknown> = { ...(schema?.response as Record<string, unknown> | undefined) }
  responses['422'] ??= conduitError('Invalid input (a field missing, too long, of the wrong type, or unknown), or a rule of Inkwell\'s refused it (a password too common, a name taken)')
  const required = guards.some((g) => g.auth === 'required')
  if (required) responses['401'] ??= conduitError('Missing, invalid, expired or revoked token')
  // The specification lists a 401 on routes where a token is optional too; here an invalid one counts as none.
  else if (guards.length > 0) responses['401'] ??= conduitError('Not sent here: an invalid or expired token counts as none (the specification lists this status)')
  if (guards.some((g) => g.active || g.permissions.length > 0)) responses['403'] ??= conduitError('The account is inactive (or its e-mail unverified with REQUIRE_VERIFIED_EMAIL), or the caller does not own what they change')
  const security = guards.length === 0 ? [] : required ? [{ [TOKEN_SCHEME]: [] }] : [{}, { [TOKEN_SCHEME]: [] }]
  return { ...schema, response: responses, security } as FastifySchema
}

async function conduitDocument (api: FastifyInstance): Promise<void> {
  await api.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Inkwell: the RealWorld (Conduit) API',
        version: '1.1.0',
        description: 'The RealWorld "Conduit" API (specification 1.1.0) on Inkwell\'s domain: its users are Inkwell\'s users, ' +
          'its tokens Inkwell sessions. Inkwell\'s own API is documented at /docs/json.'
      },
      servers: [{ url: '/api' }],
      components: {
        securitySchemes: {
          [TOKEN_SCHEME]: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description: '`Token <token>`, the token of `POST /users/login` or `POST /users`; it lives CONDUIT_TOKEN_TTL seconds (7 days by default)'
          }
        }
      }
    },
    transform ({ schema, url, route }) {
      return { schema: documentConduitRoute(schema, route.preHandler) as never, url: url.replace(/^\/api(?=\/)/, '') }
    },
    // Only Conduit's shapes: the schemas Inkwell shares by $id are not this document's.
    transformObject (document) {
      if (!('openapiObject' in document)) return document.swaggerObject
      const { components } = document.openapiObject
      if (components !== undefined) components.schemas = {}
      return document.openapiObject
    }
  })
  api.get('/docs/json', { schema: { hide: true } }, async () => api.swagger())
}

/**
 * The RealWorld "Conduit" API under /api, exactly as its specification has it, over Inkwell's domain:
 * the same users, sessions (a Conduit token is a session's access token, revocable at once), guards,
 * throttles and rules. Only three things differ, all here: tokens come as `Authorization: Token <jwt>`
 * (the guards' extractor reads the route's `authScheme`), bodies and answers are Conduit's envelopes,
 * and errors are `{"errors": {"body": [...]}}` with 422 where Inkwell says 400 or 409.
 */
const conduitRoutes: FastifyPluginAsyncTypebox = async (api) => {
  useAuthScheme(api, TOKEN_SCHEME)
  await conduitDocument(api)

  // Inkwell's error answers, whatever made them (the error handler, a guard, validation), in Conduit's
  // shape, before they are serialized (so by the route's schema of Conduit's error, under its status).
  api.addHook('preSerialization', async (_request, reply, payload: unknown) => {
    if (reply.statusCode < 400 || !isInkwellError(payload)) return payload
    if (reply.statusCode === 400 || reply.statusCode === 409) reply.code(422)
    if (reply.hasHeader('www-authenticate')) reply.header('www-authenticate', TOKEN_SCHEME)
    return { errors: { body: [conduitMessage(payload)] } }
  })
  api.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ errors: { body: [`Route ${request.method} ${request.url.split('?')[0]} not found`] } })
  })

  // Registration and login share Inkwell's per-client budget for /auth.
  await api.register(async (limited) => {
    await limited.register(authRateLimit)
    await limited.register(usersRoutes)
  })
  await api.register(profilesRoutes)
  await api.register(articlesRoutes)
}

export default conduitRoutes
