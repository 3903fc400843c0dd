import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import { errorResponse } from '../schemas/common.js'
import { guardsOf, type GuardInfo } from './auth.js'

export const SECURITY_SCHEME = 'OAuth2PasswordBearer'

type Responses = Record<string, unknown>

/** What the route's guards together demand, in words for the description. */
function requirementText (guards: GuardInfo[]): string | undefined {
  const roles = [...new Set(guards.flatMap((g) => g.roles))]
  const permissions = [...new Set(guards.flatMap((g) => g.permissions))]
  const parts = [
    ...(roles.length > 0 ? [`role ${roles.map((r) => `\`${r}\``).join(' or ')}`] : []),
    ...(permissions.length > 0 ? [`permission ${permissions.map((p) => `\`${p}\``).join(', ')}`] : []),
    ...(guards.some((g) => g.active) ? ['an active account'] : []),
    ...(guards.some((g) => g.secondFactor) ? ['a session opened with a second factor (authenticator code, recovery code or passkey; else 403 `Second factor required`, code `MFA_REQUIRED`)'] : [])
  ]
  return parts.length > 0 ? `**Requires** ${parts.join(', ')}.` : undefined
}

/**
 * Security and the 401/403 responses are derived from the guards a route really runs,
 * never written by hand beside them, so the document cannot drift from the server.
 */
export function documentGuards (schema: FastifySchema | undefined, preHandler: unknown): FastifySchema {
  const guards = guardsOf(preHandler)
  const base: FastifySchema & { security?: unknown, description?: string } = { ...schema }
  if (guards.length === 0) return { ...base, security: [] }

  const required = guards.some((g) => g.auth === 'required')
  const responses: Responses = { ...(base.response as Responses | undefined) }
  if (required) {
    responses['401'] ??= errorResponse('Missing, invalid, expired or revoked access token (`Could not validate credentials`)')
  }
  const forbidding = guards.some((g) => g.active || g.roles.length > 0 || g.permissions.length > 0 || g.secondFactor)
  if (forbidding) {
    const secondFactor = guards.some((g) => g.secondFactor) ? ', or its session was opened without a second factor (`Second factor required`)' : ''
    responses['403'] ??= errorResponse(`The account is inactive, its e-mail is not verified (with \`REQUIRE_VERIFIED_EMAIL\`), or it lacks the role or permission required${secondFactor}`)
  }
  const requirement = requirementText(guards)
  return {
    ...base,
    // Optional authentication: anonymous is allowed ({}), a bearer token shows more.
    security: required ? [{ [SECURITY_SCHEME]: [] }] : [{}, { [SECURITY_SCHEME]: [] }],
    response: responses,
    ...(requirement !== undefined && {
      description: base.description === undefined ? requirement : `${base.description}\n\n${requirement}`
    })
  }
}

interface ObjectSchema { properties?: Record<string, { default?: unknown }>, required?: string[] }

/**
 * A query parameter with a default may be left out (validation fills the default in), so the document
 * must not call it required, or generated clients demand it. Copies: the route's own schema is untouched.
 */
export function documentQueryDefaults (schema: FastifySchema): FastifySchema {
  const query = schema.querystring as ObjectSchema | undefined
  const properties = query?.properties
  if (query?.required === undefined || properties === undefined) return schema
  return { ...schema, querystring: { ...query, required: query.required.filter((name) => properties[name]?.default === undefined) } }
}

/** Any route that reads a body can refuse one that is too large or of a type it does not parse. */
export function documentBodyErrors (schema: FastifySchema): FastifySchema {
  if (schema.body === undefined) return schema
  const responses: Responses = { ...(schema.response as Responses | undefined) }
  responses['413'] ??= errorResponse('The body is larger than this route accepts')
  responses['415'] ??= errorResponse('The body\'s content type is not one this route accepts')
  return { ...schema, response: responses }
}

async function swaggerPlugin (app: FastifyInstance) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Inkwell API',
        version: '0.1.0',
        description: 'A blog API whose heart is authentication and authorization. ' +
          'Log in with the Authorize button (OAuth2 password flow against `/auth/token`).',
        license: { name: 'MIT', identifier: 'MIT' }
      },
      // Relative: Swagger UI's "Try it out" calls the origin the page came from, and generated clients
      // resolve paths against the base URL they are given.
      servers: [{ url: '/', description: 'The server that publishes this document' }],
      tags: [
        { name: 'auth', description: 'Logging in and out, tokens' },
        { name: 'users', description: 'Accounts and profiles' },
        { name: 'mfa', description: 'Second factors: an authenticator app (TOTP) with recovery codes, and passkeys' },
        { name: 'posts', description: 'Posts, likes, tags and the feed' },
        { name: 'comments', description: 'Comments on posts' },
        { name: 'admin', description: 'Administration: every route requires the `admin` role; every write is audited' },
        { name: 'ops', description: 'Operations' }
      ],
      components: {
        securitySchemes: {
          [SECURITY_SCHEME]: {
            type: 'oauth2',
            description: 'Access token from `/auth/token`, sent as `Authorization: Bearer <token>`',
            flows: { password: { tokenUrl: '/auth/token', scopes: {} } }
          }
        }
      }
    },
    // Shared schemas keep their $id as their component name instead of def-N.
    refResolver: {
      buildLocalReference (json, _baseUri, _fragment, i) {
        return typeof json.$id === 'string' ? json.$id : `def-${i}`
      }
    },
    transform ({ schema, url, route }) {
      // The Conduit API (/api) has a document of its own (/api/docs/json).
      if (route.config?.authScheme === 'Token') return { schema: { ...schema, hide: true } as never, url }
      return { schema: documentBodyErrors(documentQueryDefaults(documentGuards(schema, route.preHandler))) as never, url }
    }
  })

  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { persistAuthorization: false, deepLinking: true },
    staticCSP: false
  })
}

export default fp(swaggerPlugin, { name: 'swagger', dependencies: ['auth'] })
