import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { imageProcessingLoad } from '../src/domain/avatars.js'
import type { LoginOutcome } from '../src/domain/login.js'
import { passwordHashingLoad } from '../src/domain/passwords.js'
import { bearerToken } from './auth.js'
import { errors } from '../src/domain/errors.js'

const LOGIN_OUTCOMES = [
  'success',
  'bad_credentials', // an unknown account or a wrong password: one outcome, as they are one 401
  'throttled', // LOGIN_FAILURE_LIMIT reached: 429 before the password is checked
  'password_changed', // verified, but a concurrent change, reset or deletion replaced the password: 401
  'mfa_required', // the right password with a second factor on: 403 and an mfa_token
  'bad_code' // a wrong second-factor code at the mfa_otp grant: 401
] as const satisfies readonly LoginOutcome[]

const LIMITS = [
  'auth_rate_limit', // AUTH_RATE_LIMIT on /auth/*: 429
  'login_failures', // LOGIN_FAILURE_LIMIT, at a login or a password asked again: 429
  'avatar_upload_per_user', // one upload at a time per user: 429
  'avatar_uploads_in_all' // four uploads at a time in all: 503
] as const
/** Which limit refused a request. */
export type Limit = typeof LIMITS[number]

export interface Metrics {
  /** This app's metrics only: apps built side by side in one process (tests) never share one. */
  readonly registry: Registry
  login: (outcome: LoginOutcome) => void
  refused: (limit: Limit) => void
  /** A gauge whose value is read from `read` at each scrape, so the hot path never updates it. */
  sampled: (name: string, help: string, read: () => number) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export const METRICS_PATH = '/metrics'
/** The route label of requests that matched no route: one series, whatever URLs are probed. */
export const UNMATCHED_ROUTE = '__unmatched__'
/** An API answers in milliseconds: most buckets below 100 ms, a few up to the 10 s drain. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

const digest = (value: string) => createHash('sha256').update(value).digest()

/** Whether the request carries `Authorization: Bearer <token>` (parsed as the API's guards parse it), compared in constant time. */
function bearerMatches (request: FastifyRequest, expected: Buffer): boolean {
  const token = bearerToken(request)
  return token !== undefined && timingSafeEqual(digest(token), expected)
}

async function metricsPlugin (app: FastifyInstance) {
  const registry = new Registry()
  const logins = new Counter({
    name: 'inkwell_logins_total',
    help: `Password logins by outcome: ${LOGIN_OUTCOMES.join(', ')}`,
    labelNames: ['outcome'],
    registers: [registry]
  })
  const refusals = new Counter({
    name: 'inkwell_throttled_requests_total',
    help: `Requests refused by a limit: ${LIMITS.join(', ')}`,
    labelNames: ['limit'],
    registers: [registry]
  })
  // Every series exists from the start at 0, so rate() and alerts see the first event.
  for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0)
  for (const limit of LIMITS) refusals.inc({ limit }, 0)
  const metrics: Metrics = {
    registry,
    login: (outcome) => logins.inc({ outcome }),
    refused: (limit) => refusals.inc({ limit }),
    sampled (name, help, read) {
      new Gauge({ name, help, registers: [registry], collect () { this.set(read()) } })
    }
  }
  app.decorate('metrics', metrics)

  metrics.sampled('inkwell_argon2_in_flight', 'argon2 hashes and verifications running now (this process)', () => passwordHashingLoad().running)
  metrics.sampled('inkwell_argon2_queued', 'argon2 hashes and verifications waiting for a slot (this process)', () => passwordHashingLoad().waiting)
  metrics.sampled('inkwell_image_jobs_in_flight', 'Avatar images being decoded and re-encoded now (this process)', () => imageProcessingLoad().running)
  metrics.sampled('inkwell_image_jobs_queued', 'Avatar images waiting for their turn to be processed (this process)', () => imageProcessingLoad().waiting)
  const pool = app.db.poolUse
  if (pool !== undefined) {
    metrics.sampled('inkwell_db_pool_connections', 'PostgreSQL connections open, idle or in use', () => pool().total)
    metrics.sampled('inkwell_db_pool_idle_connections', 'PostgreSQL connections open and idle', () => pool().idle)
    metrics.sampled('inkwell_db_pool_waiting_queries', 'Queries waiting for a PostgreSQL connection', () => pool().waiting)
    metrics.sampled('inkwell_db_pool_max_connections', 'The most PostgreSQL connections this process may open (DATABASE_POOL_SIZE)', () => pool().max)
  }

  // Without METRICS_TOKEN nothing is timed and there is no /metrics: a 404 like any unknown route.
  const token = app.config.metricsToken
  if (token === undefined) return
  const expected = digest(token)

  collectDefaultMetrics({ register: registry })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request to the end of its response, by route pattern, method and status (_count: requests)',
    labelNames: ['method', 'route', 'status_code'],
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  // One hook, and Fastify's own timing (reply.elapsedTime): nothing per request but the observation.
  app.addHook('onResponse', (request, reply, done) => {
    // The route's pattern (`/posts/:id`), never the URL: ids and probes cannot multiply the series.
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE
    if (route !== METRICS_PATH) {
      duration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    }
    done()
  })

  app.get(METRICS_PATH, {
    // For operators, not API clients: absent from the OpenAPI document.
    schema: { hide: true },
    onRequest: async (request) => {
      if (!bearerMatches(request, expected)) throw errors.invalidCredentials()
    }
  }, async (_request, reply) => {
    reply.header('cache-control', 'no-store').type(registry.contentType)
    return registry.metrics()
  })
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['config', 'db', 'errors'] })
