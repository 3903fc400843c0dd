import fastifyJwt from '@fastify/jwt'
import { httpErrors } from '@fastify/sensible'
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../src/domain/errors.js'
import { SECOND_FACTORS } from '../src/domain/login.js'
import { hasPermission, type Permission, type Role } from '../src/policy.js'
import { currentUserQuery } from '../src/domain/sessions.js'
import type { CurrentUser } from '../src/domain/users.js'

export interface AccessClaims {
  sub: string
  sid: string
  type: 'access'
  jti?: string
  iat?: number
  exp?: number
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims
    user: CurrentUser | null
  }
}

/** What a guard demands; read by the OpenAPI generator so the docs follow the hooks. */
export interface GuardInfo {
  auth: 'required' | 'optional'
  active: boolean
  roles: readonly Role[]
  permissions: readonly Permission[]
  /** The session must have been opened with a second factor (amr otp, rc or hwk). */
  secondFactor: boolean
}

export const GUARD: unique symbol = Symbol.for('inkwell.guard')
export type Guard = preHandlerAsyncHookHandler & { [GUARD]: GuardInfo }

declare module 'fastify' {
  interface FastifyInstance {
    /** Any logged-in user, active or not. Sets `request.user`. */
    authenticate: Guard
    /** Sets `request.user` when a valid token is sent; an invalid or missing one means anonymous. */
    authenticateOptional: Guard
    /** A logged-in user whose account is active (403 `Inactive account` otherwise). */
    requireActiveUser: Guard
    /** An active user with one of these roles. */
    requireRole: (...roles: Role[]) => Guard
    /** An active user whose role grants every one of these permissions. */
    requirePermission: (...permissions: Permission[]) => Guard
    /** A user whose session was opened with a second factor (403 `Second factor required`, code MFA_REQUIRED, otherwise). */
    requireSecondFactor: Guard
    /** Runs `guard` before every route registered after this call in this plugin and its children. */
    protect: (guard: Guard) => void
  }
  interface FastifyContextConfig {
    /** The `Authorization` scheme of this route's tokens: `Bearer` (the default), or `Token` (the Conduit API, /api). */
    authScheme?: AuthScheme
  }
  interface FastifyRequest {
    /** Its route's `authScheme`, set by useAuthScheme's hook: read here rather than through `request.routeOptions`, which builds an object on every access. */
    authScheme: AuthScheme
  }
}

export type AuthScheme = 'Bearer' | 'Token'


/** The caller on a route guarded by `authenticate` or stronger; the 401 if a guard was forgotten. */
export function userOf (request: FastifyRequest): CurrentUser {
  if (!request.user) throw errors.invalidCredentials()
  return request.user
}

function forbidden (request: FastifyRequest, message: string, code: string) {
  request.log.info({ userId: request.user?.id, code }, 'access denied')
  return Object.assign(httpErrors.forbidden(message), { code })
}

// RFC 6750 b64token after a case-insensitive scheme; anything else counts as no token at all.
const SCHEMES: Record<AuthScheme, RegExp> = {
  Bearer: /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i,
  Token: /^Token ([A-Za-z0-9\-._~+/]+=*)$/i
}
const USER_ID = /^[1-9][0-9]{0,9}$/

/**
 * The token of `Authorization: <scheme> <token>`, the scheme being the route's (`authScheme`, Bearer
 * unless said), or undefined: the one parser of authorization headers. The same guards serve both
 * APIs; only this extractor differs.
 */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  return header === undefined ? undefined : SCHEMES[request.authScheme].exec(header)?.[1]
}

/**
 * Every route registered after this call in `app` and its children takes its tokens under `scheme`:
 * its config says so (for the docs), and a hook tells each of its requests (for the extractor).
 */
export function useAuthScheme (app: FastifyInstance, scheme: AuthScheme): void {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, authScheme: scheme }
  })
  app.addHook('onRequest', (request, _reply, done) => {
    request.authScheme = scheme
    done()
  })
}

function guard (hook: preHandlerAsyncHookHandler, info: Partial<GuardInfo>): Guard {
  return Object.assign(hook, {
    [GUARD]: { auth: 'required', active: false, roles: [], permissions: [], secondFactor: false, ...info } satisfies GuardInfo
  })
}

async function authPlugin (app: FastifyInstance) {
  await app.register(fastifyJwt, {
    secret: app.config.jwtSecret,
    sign: { algorithm: 'HS256', expiresIn: `${app.config.accessTokenTtl}s` },
    // Pinned: a token naming any other algorithm, `none` included, fails verification.
    // `cache`: fast-jwt remembers a successful verification (keyed by a SHA-256 of the whole token,
    // at most 10 000 tokens, LRU) so a token's signature is checked once, not on every request.
    // A cached entry is only served between the token's `nbf` and its `exp`, so an expired token is
    // still refused; failures are not served from the cache. It caches the signature and claim checks
    // only: the user and session are still read from the database on every request (revocation, role
    // and active flag stay immediate).
    verify: { algorithms: ['HS256'], requiredClaims: ['exp', 'sub', 'sid', 'type'], cache: 10_000 }
  })

  app.decorateRequest('authScheme', 'Bearer')
  const findCurrentUser = currentUserQuery(app.db)

  /** Who the token says is calling, re-read from the database; undefined whenever anything is off. */
  async function resolveUser (request: FastifyRequest): Promise<CurrentUser | undefined> {
    const token = bearerToken(request)
    if (token === undefined) return undefined
    let claims: AccessClaims
    try {
      claims = app.jwt.verify<AccessClaims>(token)
    } catch {
      return undefined
    }
    if (claims.type !== 'access' || typeof claims.sid !== 'string' ||
      typeof claims.sub !== 'string' || !USER_ID.test(claims.sub)) return undefined
    return await findCurrentUser(Number(claims.sub), claims.sid)
  }

  async function requireUser (request: FastifyRequest): Promise<CurrentUser> {
    if (request.user) return request.user
    const user = await resolveUser(request)
    if (user === undefined) {
      request.log.info({ hasAuthorization: request.headers.authorization !== undefined }, 'authentication refused')
      throw errors.invalidCredentials()
    }
    request.user = user
    return user
  }

  const { requireVerifiedEmail } = app.config
  async function requireActive (request: FastifyRequest): Promise<CurrentUser> {
    const user = await requireUser(request)
    if (!user.isActive) throw forbidden(request, 'Inactive account', 'INACTIVE_ACCOUNT')
    if (requireVerifiedEmail && !user.emailVerified) throw forbidden(request, 'Email not verified', 'EMAIL_NOT_VERIFIED')
    return user
  }

  app.decorate('authenticate', guard(async (request) => { await requireUser(request) }, {}))

  app.decorate('authenticateOptional', guard(async (request) => {
    request.user = await resolveUser(request) ?? null
  }, { auth: 'optional' }))

  app.decorate('requireActiveUser', guard(async (request) => { await requireActive(request) }, { active: true }))

  app.decorate('requireRole', (...roles: Role[]) => guard(async (request) => {
    const user = await requireActive(request)
    if (!roles.includes(user.role)) throw forbidden(request, `Requires role: ${roles.join(' or ')}`, 'ROLE_REQUIRED')
  }, { active: true, roles }))

  app.decorate('requirePermission', (...permissions: Permission[]) => guard(async (request) => {
    const user = await requireActive(request)
    const missing = permissions.find((p) => !hasPermission(user.role, p))
    if (missing !== undefined) throw forbidden(request, `Requires permission: ${missing}`, 'PERMISSION_REQUIRED')
  }, { active: true, permissions }))

  app.decorate('requireSecondFactor', guard(async (request) => {
    const user = await requireUser(request)
    if (!user.sessionAmr.split(' ').some((method) => (SECOND_FACTORS as readonly string[]).includes(method))) {
      request.log.info({ userId: user.id, code: 'MFA_REQUIRED' }, 'access denied')
      throw errors.secondFactorRequired()
    }
  }, { secondFactor: true }))

  // Guards that protect() put before a route's own: a later protect() call goes after them, so prefix guards run in the order declared.
  const prefixGuards = new WeakSet<object>()
  app.decorate('protect', function (this: FastifyInstance, prefixGuard: Guard) {
    prefixGuards.add(prefixGuard)
    // Added to the route's own preHandler list (not as a context hook) so the docs can see it.
    this.addHook('onRoute', (route) => {
      const hooks = route.preHandler === undefined ? [] : [route.preHandler].flat()
      const firstOwn = hooks.findIndex((h) => !prefixGuards.has(h))
      const at = firstOwn < 0 ? hooks.length : firstOwn
      route.preHandler = [...hooks.slice(0, at), prefixGuard, ...hooks.slice(at)]
    })
  })
}

// Stryker disable next-line ArrayDeclaration: src/app.ts registers config and db first; the list only turns a wrong order into a clear start-up error
export default fp(authPlugin, { name: 'auth', dependencies: ['config', 'db'] })

/** The guards a route runs, as the docs generator sees them. */
export function guardsOf (preHandler: unknown): GuardInfo[] {
  // Stryker disable next-line ConditionalExpression,ArrayDeclaration: whatever this list holds besides guards, the filter below drops it
  const hooks = preHandler === undefined ? [] : [preHandler].flat()
  return hooks.flatMap((h) => (typeof h === 'function' && GUARD in h) ? [(h as Guard)[GUARD]] : [])
}
