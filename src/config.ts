import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { engineOf } from './db/engine.js'

export interface Config {
  nodeEnv: string
  host: string
  port: number
  /** A SQLite file path, or a postgres:// URL (src/db/index.ts picks the engine from it). */
  databaseUrl: string
  /** PostgreSQL connections this process may hold at once. */
  databasePoolSize: number
  /** Shared counters (rate limit, login failures) when set; per process otherwise. */
  redisUrl?: string
  /** Prefix of every Redis key, so several deployments (or test runs) can share one Redis. */
  redisKeyPrefix: string
  jwtSecret: string
  accessTokenTtl: number
  refreshTokenTtl: number
  /** Life of a Conduit (/api) token, which is never refreshed: its session ends with it. */
  conduitTokenTtl: number
  uploadsDir: string
  logLevel: string
  authRateLimit: number
  loginFailureLimit: number
  /** Exact origins allowed to call the API from a browser; empty: CORS closed. */
  corsOrigins: string[]
  /** Fastify's `trustProxy`: false, or the addresses of the proxies allowed to set X-Forwarded-For. */
  trustProxy: false | string[]
  /** smtp:// or smtps:// with credentials if needed; unset: mails go to `mailOutboxDir` as .eml files. */
  smtpUrl?: string
  mailFrom: string
  mailOutboxDir: string
  /** The client application's address: every link in a mail starts with it, never with the request's Host. */
  appUrl: string
  passwordResetTtl: number
  emailTokenTtl: number
  /** When true, routes for active users also answer 403 `Email not verified` until it is. */
  requireVerifiedEmail: boolean
  /** When set, GET /metrics answers Prometheus text to `Authorization: Bearer <this>`; unset, there is no /metrics. */
  metricsToken?: string
  /** Set when the secret was generated for development, so start-up can warn about it. */
  generatedSecretFile?: string
  /** Encrypts TOTP secrets and keys recovery-code hashes; JWT_SECRET when unset. */
  mfaEncryptionKey?: string
  /** The WebAuthn relying-party id: the host of APP_URL unless WEBAUTHN_RP_ID names a registrable suffix of it. */
  webauthnRpId: string
  /** When true, every /admin route answers 403 `Second factor required` to a session opened with a password alone. */
  adminMfaRequired: boolean
}

export class ConfigError extends Error {
  constructor (readonly variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const MIN_SECRET_BYTES = 32

function text (env: Env, name: string, fallback: string): string {
  const value = env[name]
  if (value === undefined || value === '') return fallback
  if (value.trim() !== value) throw new ConfigError(name, 'must not start or end with whitespace')
  return value
}

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${raw}"`)
  return value
}

/** `https://app.example.com,http://localhost:5173`: each an exact origin, as a browser sends it. */
function corsOrigins (env: Env): string[] {
  const raw = env.CORS_ORIGINS
  if (raw === undefined || raw.trim() === '') return []
  return raw.split(',').map((entry) => {
    const origin = entry.trim()
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {
      parsed = undefined
    }
    // '*', wildcards and 'null' are refused: the first two open the API to sites nobody listed, the last to sandboxed frames and files.
    if (parsed === undefined || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin ||
      !/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(parsed.hostname)) {
      throw new ConfigError('CORS_ORIGINS', `must be a comma-separated list of exact origins such as https://app.example.com (scheme, host and port only, no path or trailing slash), got "${origin}"`)
    }
    return origin
  })
}

// proxy-addr's names for address ranges, as Fastify's trustProxy accepts them.
const PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal']

function isAddressOrSubnet (entry: string): boolean {
  if (PROXY_RANGES.includes(entry)) return true
  const [address = '', prefix, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

/**
 * Off unless set: only a proxy the operator names may say who the client is through
 * `X-Forwarded-For`. Hop counts and `true` are refused: neither can tell a proxy from a
 * client connecting directly with a forged header (Fastify 5 ignores hop counts for that reason).
 */
function trustProxy (env: Env): false | string[] {
  const raw = env.TRUST_PROXY?.trim()
  if (raw === undefined || raw === '' || raw === 'false') return false
  const entries = raw.split(',').map((e) => e.trim())
  if (!entries.every(isAddressOrSubnet)) {
    throw new ConfigError('TRUST_PROXY', 'must be a comma-separated list of the proxies\' addresses or subnets ' +
      `(127.0.0.1, 10.0.0.0/8, ::1, loopback, linklocal, uniquelocal); not a hop count or "true", which would let a client that connects directly forge its address; got "${raw}"`)
  }
  return entries
}

/** Reads the secret from the environment, or in development keeps a generated one beside the database. */
function jwtSecret (env: Env, nodeEnv: string, databaseUrl: string): { secret: string, generatedSecretFile?: string } {
  const given = env.JWT_SECRET
  if (given !== undefined && given !== '') {
    if (Buffer.byteLength(given, 'utf8') < MIN_SECRET_BYTES) {
      throw new ConfigError('JWT_SECRET', `must be at least ${MIN_SECRET_BYTES} bytes long`)
    }
    return { secret: given }
  }
  if (nodeEnv === 'production') throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production')
  if (databaseUrl === ':memory:') return { secret: randomBytes(48).toString('base64url') }

  // Beside a SQLite file; for PostgreSQL in ./data/, shared by the processes of one machine only
  // (several machines need JWT_SECRET).
  const file = resolve(engineOf(databaseUrl) === 'postgres' ? './data' : dirname(databaseUrl), '.jwt-secret')
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim()
    if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
      throw new ConfigError('JWT_SECRET', `is unset and the generated secret in ${file} is shorter than ${MIN_SECRET_BYTES} bytes`)
    }
    return { secret, generatedSecretFile: file }
  }
  mkdirSync(dirname(file), { recursive: true })
  const secret = randomBytes(48).toString('base64url')
  // 'wx' fails if another process created it first; then use theirs.
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' })
  } catch {
    return { secret: readFileSync(file, 'utf8').trim(), generatedSecretFile: file }
  }
  return { secret, generatedSecretFile: file }
}

function databaseUrl (env: Env): string {
  const raw = text(env, 'DATABASE_URL', './data/inkwell.db')
  if (engineOf(raw) === 'postgres') {
    let url: URL | undefined
    try {
      url = new URL(raw)
    } catch {
      url = undefined
    }
    if (url === undefined || url.hostname === '') {
      throw new ConfigError('DATABASE_URL', 'must be a SQLite file path or a URL such as postgres://user:password@host:5432/inkwell')
    }
    return raw
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new ConfigError('DATABASE_URL', 'must be a SQLite file path (or file:path) or a postgres:// or postgresql:// URL')
  }
  return raw.replace(/^file:/, '')
}

function url (env: Env, name: string, protocols: string[], example: string): string | undefined {
  const raw = text(env, name, '')
  if (raw === '') return undefined
  let parsed: URL | undefined
  try {
    parsed = new URL(raw)
  } catch {
    parsed = undefined
  }
  if (parsed === undefined || !protocols.includes(parsed.protocol) || parsed.hostname === '') {
    throw new ConfigError(name, `must be a URL such as ${example}, got "${raw.replace(/\/\/[^@/]*@/, '//***@')}"`)
  }
  return raw
}

function boolean (env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw new ConfigError(name, `must be true or false, got "${raw}"`)
}

/** A bare address, or a display name with one: `Inkwell <no-reply@example.com>`. */
function mailFrom (env: Env, host: string): string {
  const value = text(env, 'MAIL_FROM', `Inkwell <no-reply@${/^[0-9.:]+$|^localhost$/.test(host) ? 'localhost' : host}>`)
  if (!/^([^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/.test(value)) {
    throw new ConfigError('MAIL_FROM', `must be an address such as no-reply@example.com or "Inkwell <no-reply@example.com>", got "${value}"`)
  }
  return value
}

function redisUrl (env: Env): string | undefined {
  const example = 'redis://host:6379/0 (rediss:// for TLS)'
  const raw = url(env, 'REDIS_URL', ['redis:', 'rediss:'], example)
  // The path names a database index, and nothing else.
  if (raw !== undefined && !/^(\/\d{0,2})?$/.test(new URL(raw).pathname)) {
    throw new ConfigError('REDIS_URL', `must be a URL such as ${example}, got "${raw.replace(/\/\/[^@/]*@/, '//***@')}"`)
  }
  return raw
}

function mfaEncryptionKey (env: Env): string | undefined {
  const raw = env.MFA_ENCRYPTION_KEY
  if (raw === undefined || raw === '') return undefined
  if (Buffer.byteLength(raw, 'utf8') < MIN_SECRET_BYTES) throw new ConfigError('MFA_ENCRYPTION_KEY', `must be at least ${MIN_SECRET_BYTES} bytes long`)
  return raw
}

/** A domain name that is APP_URL's host or a suffix of it at a dot, as WebAuthn requires of an rp id. */
function webauthnRpId (env: Env, appUrl: string): string {
  const host = new URL(appUrl).hostname
  const raw = text(env, 'WEBAUTHN_RP_ID', '')
  if (raw === '') return host.replace(/^\[|\]$/g, '')
  if (!/^([a-z0-9-]+\.)*[a-z0-9-]+$/.test(raw) || !(host === raw || host.endsWith(`.${raw}`))) {
    throw new ConfigError('WEBAUTHN_RP_ID', `must be the host of APP_URL (${host}) or a parent domain of it, got "${raw}"`)
  }
  return raw
}

const MIN_METRICS_TOKEN_LENGTH = 16

/** A bearer token as RFC 6750 spells one (b64token), long enough not to be guessed. */
function metricsToken (env: Env): string | undefined {
  const raw = env.METRICS_TOKEN
  if (raw === undefined || raw === '') return undefined
  if (raw.length < MIN_METRICS_TOKEN_LENGTH || raw.length > 512 || !/^[A-Za-z0-9\-._~+/]+=*$/.test(raw)) {
    throw new ConfigError('METRICS_TOKEN', `must be ${MIN_METRICS_TOKEN_LENGTH} to 512 characters of letters, digits and -._~+/ (a bearer token, e.g. from \`openssl rand -hex 32\`)`)
  }
  return raw
}

export function loadConfig (env: Env = process.env): Config {
  const nodeEnv = text(env, 'NODE_ENV', 'development')
  const database = databaseUrl(env)
  const logLevel = text(env, 'LOG_LEVEL', 'info')
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)

  const accessTokenTtl = integer(env, 'ACCESS_TOKEN_TTL', 900, 1, 86_400)
  const refreshTokenTtl = integer(env, 'REFRESH_TOKEN_TTL', 604_800, 1, 31_536_000)
  const { secret, generatedSecretFile } = jwtSecret(env, nodeEnv, database)
  const host = text(env, 'HOST', '127.0.0.1')
  const port = integer(env, 'PORT', 3000, 0, 65_535)

  const config: Config = {
    nodeEnv,
    host,
    port,
    databaseUrl: database,
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    redisKeyPrefix: text(env, 'REDIS_KEY_PREFIX', 'inkwell:'),
    jwtSecret: secret,
    accessTokenTtl,
    refreshTokenTtl,
    conduitTokenTtl: integer(env, 'CONDUIT_TOKEN_TTL', 604_800, 60, 31_536_000),
    uploadsDir: text(env, 'UPLOADS_DIR', './data/uploads'),
    logLevel,
    authRateLimit: integer(env, 'AUTH_RATE_LIMIT', 60, 1, Number.MAX_SAFE_INTEGER),
    loginFailureLimit: integer(env, 'LOGIN_FAILURE_LIMIT', 10, 1, Number.MAX_SAFE_INTEGER),
    mailFrom: mailFrom(env, host),
    mailOutboxDir: text(env, 'MAIL_OUTBOX_DIR', './data/outbox'),
    appUrl: (url(env, 'APP_URL', ['http:', 'https:'], 'https://app.example.com') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, ''),
    passwordResetTtl: integer(env, 'PASSWORD_RESET_TTL', 1800, 1, Number.MAX_SAFE_INTEGER),
    emailTokenTtl: integer(env, 'EMAIL_TOKEN_TTL', 86_400, 1, Number.MAX_SAFE_INTEGER),
    requireVerifiedEmail: boolean(env, 'REQUIRE_VERIFIED_EMAIL', false),
    corsOrigins: corsOrigins(env),
    trustProxy: trustProxy(env),
    webauthnRpId: '',
    adminMfaRequired: boolean(env, 'ADMIN_MFA_REQUIRED', false)
  }
  config.webauthnRpId = webauthnRpId(env, config.appUrl)
  const mfaKey = mfaEncryptionKey(env)
  if (mfaKey !== undefined) config.mfaEncryptionKey = mfaKey
  const redis = redisUrl(env)
  if (redis !== undefined) config.redisUrl = redis
  const smtp = url(env, 'SMTP_URL', ['smtp:', 'smtps:'], 'smtp://user:password@mail.example.com:587 (smtps:// for TLS from the start)')
  if (smtp !== undefined) config.smtpUrl = smtp
  const metrics = metricsToken(env)
  if (metrics !== undefined) config.metricsToken = metrics
  if (generatedSecretFile !== undefined) config.generatedSecretFile = generatedSecretFile
  return config
}
