import formbody from '@fastify/formbody'
import sensible from '@fastify/sensible'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyRequest } from 'fastify'
import type { DestinationStream } from 'pino'
import authRateLimit from '../plugins/auth-rate-limit.js'
import authPlugin from '../plugins/auth.js'
import configPlugin from '../plugins/config.js'
import countersPlugin from '../plugins/counters.js'
import cursorsPlugin from '../plugins/cursors.js'
import dbPlugin from '../plugins/db.js'
import errorsPlugin from '../plugins/errors.js'
import gracefulPlugin from '../plugins/graceful.js'
import jsonPlugin from '../plugins/json.js'
import loginPlugin from '../plugins/login.js'
import mailPlugin, { type MailPluginOptions } from '../plugins/mail.js'
import metricsPlugin from '../plugins/metrics.js'
import requestLogPlugin from '../plugins/request-log.js'
import schemasPlugin from '../plugins/schemas.js'
import securityPlugin from '../plugins/security.js'
import { buildSerializer } from '../plugins/serialization.js'
import swaggerPlugin from '../plugins/swagger.js'
import tokensPlugin from '../plugins/tokens.js'
import uploadsPlugin from '../plugins/uploads.js'
import validationPlugin from '../plugins/validation.js'
import adminRoutes from '../routes/admin/index.js'
import authRoutes from '../routes/auth/index.js'
import healthRoutes from '../routes/health/index.js'
import pagesRoutes from '../routes/pages/index.js'
import conduitRoutes from '../routes/conduit/index.js'
import commentsRoutes from '../routes/posts/comments.js'
import feedRoutes from '../routes/feed/index.js'
import postsRoutes from '../routes/posts/index.js'
import tagsRoutes from '../routes/tags/index.js'
import avatarRoutes from '../routes/users/avatar.js'
import followsRoutes from '../routes/users/follows.js'
import accountRoutes from '../routes/users/account.js'
import mfaRoutes from '../routes/users/mfa.js'
import usersRoutes from '../routes/users/index.js'
import sessionsRoutes from '../routes/users/sessions.js'
import type { Config } from './config.js'

// A query parameter whose name says it may carry a secret: its value never reaches the log.
const SENSITIVE_PARAM = /token|password|passwd|secret|key|code|auth|session|signature|credential/i

/** A URL fit for the log: each sensitive query value replaced, whatever the route. */
export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    let name = eq < 0 ? pair : pair.slice(0, eq)
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '))
    } catch {
      // an undecodable name is judged as it was sent
    }
    return eq >= 0 && SENSITIVE_PARAM.test(name) ? `${pair.slice(0, eq)}=[redacted]` : pair
  })
  return `${url.slice(0, q)}?${params.join('&')}`
}

/** Fastify's request serializer, with the query redacted. */
function requestForLog (request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

export interface BuildOptions {
  /** false silences the log entirely (tests); a stream receives it instead of stdout. */
  logger?: false
  logStream?: DestinationStream
  /** Retry waits and timeouts of the mailer (tests shorten them). */
  mail?: MailPluginOptions['mailer']
}

/** Composes the application; it does not listen. */
export async function buildApp (config: Config, options: BuildOptions = {}) {
  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      // Fastify's request serializer logs no headers; this guards against anyone logging them later.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '[redacted]' },
      serializers: { req: requestForLog },
      ...(options.logStream !== undefined && { stream: options.logStream })
    },
    bodyLimit: 1024 * 1024,
    // Request ids are ours, not taken from a header a client controls.
    genReqId: () => crypto.randomUUID(),
    // X-Forwarded-For counts only from a proxy the operator named (TRUST_PROXY); else request.ip is the peer.
    trustProxy: config.trustProxy,
    // Transport limits (docs/limits.md): a slow or oversized client is cut off instead of holding a socket.
    http: {
      maxHeaderSize: 16 * 1024,
      headersTimeout: 10_000,
      // How often Node enforces headersTimeout and requestTimeout (default 30 s would blur both).
      connectionsCheckingInterval: 2_000
    },
    requestTimeout: 60_000,
    // A request that reaches us on an open connection while we close is served, not refused with 503:
    // a proxy would not replay a refused POST on another process.
    return503OnClosing: false,
    connectionTimeout: 30_000,
    // Above the 60 s idle timeout of common load balancers, so none reuses a socket we are closing.
    keepAliveTimeout: 72_000,
    routerOptions: { maxParamLength: 200 },
    schemaController: { compilersFactory: { buildSerializer } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(configPlugin, { config })
  await app.register(dbPlugin)
  await app.register(countersPlugin)
  await app.register(mailPlugin, { ...(options.mail !== undefined && { mailer: options.mail }) })
  await app.register(sensible)
  await app.register(securityPlugin)
  await app.register(formbody, { bodyLimit: 16 * 1024 })
  await app.register(errorsPlugin)
  await app.register(gracefulPlugin)
  await app.register(requestLogPlugin)
  await app.register(metricsPlugin)
  await app.register(jsonPlugin)
  await app.register(schemasPlugin)
  await app.register(validationPlugin)
  await app.register(authPlugin)
  await app.register(tokensPlugin)
  await app.register(cursorsPlugin)
  await app.register(loginPlugin)
  await app.register(swaggerPlugin)
  await app.register(uploadsPlugin)

  await app.register(healthRoutes)
  // /auth/* and the pages its mailed links open are under one rate limit: one budget per client.
  await app.register(async (linked) => {
    await linked.register(authRateLimit)
    await linked.register(authRoutes, { prefix: '/auth' })
    await linked.register(pagesRoutes)
  })
  await app.register(usersRoutes, { prefix: '/users' })
  await app.register(accountRoutes, { prefix: '/users' })
  await app.register(sessionsRoutes, { prefix: '/users' })
  await app.register(mfaRoutes, { prefix: '/users' })
  await app.register(avatarRoutes, { prefix: '/users' })
  await app.register(followsRoutes, { prefix: '/users' })
  await app.register(postsRoutes, { prefix: '/posts' })
  await app.register(commentsRoutes, { prefix: '/posts' })
  await app.register(feedRoutes, { prefix: '/feed' })
  await app.register(tagsRoutes, { prefix: '/tags' })
  await app.register(adminRoutes, { prefix: '/admin' })
  // The RealWorld "Conduit" API over the same domain, for its front-ends (docs/conduit.md).
  await app.register(conduitRoutes, { prefix: '/api' })

  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
