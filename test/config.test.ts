import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

const SECRET = 'a-test-secret-of-at-least-32-bytes-0123'

t.test('defaults', async (t) => {
  const config = loadConfig({ JWT_SECRET: SECRET })
  t.equal(config.host, '127.0.0.1', 'HOST')
  t.equal(config.port, 3000, 'PORT')
  t.equal(config.accessTokenTtl, 900, 'ACCESS_TOKEN_TTL')
  t.equal(config.refreshTokenTtl, 604800, 'REFRESH_TOKEN_TTL')
  t.equal(config.authRateLimit, 60, 'AUTH_RATE_LIMIT')
  t.equal(config.loginFailureLimit, 10, 'LOGIN_FAILURE_LIMIT')
  t.equal(config.logLevel, 'info', 'LOG_LEVEL')
  t.match(config.databaseUrl, /^(\.\/)?data\//, 'DATABASE_URL is under ./data/')
  t.equal(config.uploadsDir, './data/uploads', 'UPLOADS_DIR')
  t.equal(config.jwtSecret, SECRET, 'JWT_SECRET as given')
  t.equal(config.generatedSecretFile, undefined, 'no generated secret when one is given')
  t.equal(config.metricsToken, undefined, 'METRICS_TOKEN unset: no /metrics')
  t.equal(config.adminMfaRequired, false, 'ADMIN_MFA_REQUIRED')
  t.equal(config.mfaEncryptionKey, undefined, 'MFA_ENCRYPTION_KEY unset: derived from JWT_SECRET')
  t.equal(config.webauthnRpId, '127.0.0.1', 'WEBAUTHN_RP_ID: the host of APP_URL')
})

t.test('second-factor settings', async (t) => {
  const config = loadConfig({ JWT_SECRET: SECRET, APP_URL: 'https://app.blog.example.com', WEBAUTHN_RP_ID: 'blog.example.com', ADMIN_MFA_REQUIRED: 'true', MFA_ENCRYPTION_KEY: 'k'.repeat(32) })
  t.equal(config.webauthnRpId, 'blog.example.com', 'a parent domain of APP_URL\'s host')
  t.equal(config.adminMfaRequired, true)
  t.equal(config.mfaEncryptionKey, 'k'.repeat(32))
  t.equal(loadConfig({ JWT_SECRET: SECRET, APP_URL: 'https://app.blog.example.com' }).webauthnRpId, 'app.blog.example.com', 'default: APP_URL\'s host')
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, APP_URL: 'https://app.blog.example.com', WEBAUTHN_RP_ID: 'example.org' }),
    { name: 'ConfigError', variable: 'WEBAUTHN_RP_ID', message: /app\.blog\.example\.com/ }, 'another domain: refused, naming the host')
})

t.test('METRICS_TOKEN is a bearer token of at least 16 characters, never echoed in the error', async (t) => {
  t.equal(loadConfig({ JWT_SECRET: SECRET, METRICS_TOKEN: 'a'.repeat(16) }).metricsToken, 'a'.repeat(16), '16 characters')
  const b64 = 'Ab0-._~+/Zz9Ab0-._~+/Zz9=='
  t.equal(loadConfig({ JWT_SECRET: SECRET, METRICS_TOKEN: b64 }).metricsToken, b64, 'every b64token character, = padding last')
  t.equal(loadConfig({ JWT_SECRET: SECRET, METRICS_TOKEN: '' }).metricsToken, undefined, 'empty is unset')
  for (const bad of ['a'.repeat(15), 'a'.repeat(513), 'a'.repeat(16) + ' b', 'a'.repeat(16) + 'é', '=' + 'a'.repeat(16), 'a'.repeat(16) + '\n']) {
    const what = `METRICS_TOKEN=${JSON.stringify(bad.length > 40 ? `${bad.slice(0, 20)}… (${bad.length})` : bad)}`
    try {
      loadConfig({ JWT_SECRET: SECRET, METRICS_TOKEN: bad })
      t.fail(`${what}: accepted`)
    } catch (err) {
      t.type(err, ConfigError, `${what}: a ConfigError`)
      t.equal((err as ConfigError).variable, 'METRICS_TOKEN', `${what}: names METRICS_TOKEN`)
      t.notOk((err as Error).message.includes(bad.trim()), `${what}: the message does not repeat the token`)
    }
  }
})

t.test('values are read from the environment', async (t) => {
  const config = loadConfig({
    JWT_SECRET: SECRET,
    HOST: '0.0.0.0',
    PORT: '0',
    DATABASE_URL: '/tmp/somewhere/inkwell.db',
    ACCESS_TOKEN_TTL: '60',
    REFRESH_TOKEN_TTL: '3600',
    UPLOADS_DIR: '/tmp/somewhere/uploads',
    LOG_LEVEL: 'warn',
    AUTH_RATE_LIMIT: '1000000',
    LOGIN_FAILURE_LIMIT: '1'
  })
  t.match(config, {
    host: '0.0.0.0',
    port: 0,
    databaseUrl: '/tmp/somewhere/inkwell.db',
    accessTokenTtl: 60,
    refreshTokenTtl: 3600,
    uploadsDir: '/tmp/somewhere/uploads',
    logLevel: 'warn',
    authRateLimit: 1000000,
    loginFailureLimit: 1
  })
  t.equal(loadConfig({ JWT_SECRET: SECRET, PORT: '65535' }).port, 65535, 'PORT 65535 is allowed')
})

t.test('each invalid value stops start-up with a ConfigError naming the variable', async (t) => {
  const bad: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['ACCESS_TOKEN_TTL', '-5'],
    ['ACCESS_TOKEN_TTL', '1.5'],
    ['ACCESS_TOKEN_TTL', '15m'],
    ['REFRESH_TOKEN_TTL', '0'],
    ['REFRESH_TOKEN_TTL', 'never'],
    ['AUTH_RATE_LIMIT', '0'],
    ['AUTH_RATE_LIMIT', '-1'],
    ['LOGIN_FAILURE_LIMIT', 'x'],
    ['LOGIN_FAILURE_LIMIT', '0'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', 'INFO '],
    ['MFA_ENCRYPTION_KEY', 'x'.repeat(31)],
    ['ADMIN_MFA_REQUIRED', 'yes'],
    ['WEBAUTHN_RP_ID', 'evil.example'],
    ['WEBAUTHN_RP_ID', 'http://127.0.0.1'],
    ['JWT_SECRET', 'x'.repeat(31)],
    // 15 two-byte characters and one ASCII: 16 characters, 31 bytes.
    ['JWT_SECRET', 'é'.repeat(15) + 'a']
  ]
  for (const [variable, value] of bad) {
    const what = `${variable}=${JSON.stringify(value)}`
    try {
      loadConfig({ JWT_SECRET: SECRET, [variable]: value })
      t.fail(`${what}: accepted`)
    } catch (err) {
      t.type(err, ConfigError, `${what}: a ConfigError`)
      t.equal((err as ConfigError).variable, variable, `${what}: names ${variable}`)
      t.match((err as Error).message, variable, `${what}: the message names ${variable}`)
    }
  }
})

t.test('JWT_SECRET is measured in UTF-8 bytes', async (t) => {
  const sixteenChars = 'é'.repeat(16)
  t.equal(Buffer.byteLength(sixteenChars, 'utf8'), 32)
  t.equal(loadConfig({ JWT_SECRET: sixteenChars }).jwtSecret, sixteenChars, '16 characters of 2 bytes each are 32 bytes: enough')
  t.equal(loadConfig({ JWT_SECRET: 'x'.repeat(32) }).jwtSecret, 'x'.repeat(32), '32 ASCII bytes: enough')
})

t.test('NODE_ENV=production requires JWT_SECRET', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const databaseUrl = join(dir, 'inkwell.db')
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: databaseUrl }),
    { name: 'ConfigError', variable: 'JWT_SECRET', message: /JWT_SECRET/ }, 'unset: refused')
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: databaseUrl, JWT_SECRET: '' }),
    { name: 'ConfigError', variable: 'JWT_SECRET', message: /JWT_SECRET/ }, 'empty: refused')
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: databaseUrl, JWT_SECRET: 'x'.repeat(31) }),
    { name: 'ConfigError', variable: 'JWT_SECRET', message: /JWT_SECRET/ }, 'too short: refused')
  t.notOk(existsSync(join(dir, '.jwt-secret')), 'no secret is generated in production')
  t.equal(loadConfig({ NODE_ENV: 'production', DATABASE_URL: databaseUrl, JWT_SECRET: SECRET }).jwtSecret, SECRET, 'given: accepted')
})

t.test('in development a missing JWT_SECRET is generated beside the database and kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { NODE_ENV: 'development', DATABASE_URL: join(dir, 'db', 'inkwell.db') }

  const first = loadConfig(env)
  t.ok(Buffer.byteLength(first.jwtSecret, 'utf8') >= 32, 'at least 32 bytes')
  t.ok(first.generatedSecretFile, 'says which file it kept the secret in')
  const file = first.generatedSecretFile!
  t.equal(dirname(file), join(dir, 'db'), 'beside the database')
  t.ok(existsSync(file), 'the file exists')
  t.equal(readFileSync(file, 'utf8').trim(), first.jwtSecret, 'the file holds the secret')
  t.equal(statSync(file).mode & 0o077, 0, 'readable by its owner only')

  const second = loadConfig(env)
  t.equal(second.jwtSecret, first.jwtSecret, 'a restart uses the same secret')
  t.equal(second.generatedSecretFile, file)

  const other = mkdtempSync(join(tmpdir(), 'inkwell-config-'))
  t.teardown(() => rmSync(other, { recursive: true, force: true }))
  const elsewhere = loadConfig({ DATABASE_URL: join(other, 'inkwell.db') })
  t.not(elsewhere.jwtSecret, first.jwtSecret, 'another database gets its own secret (NODE_ENV unset is development)')
  t.equal(loadConfig({ DATABASE_URL: join(dir, 'db', 'inkwell.db'), JWT_SECRET: SECRET }).jwtSecret, SECRET,
    'a given JWT_SECRET wins over the generated one')
})

t.test('DATABASE_URL picks the engine; REDIS_URL and the pool size are read and checked', async (t) => {
  const sqlite = loadConfig({ JWT_SECRET: SECRET, DATABASE_URL: 'file:/tmp/x/inkwell.db' })
  t.equal(sqlite.databaseUrl, '/tmp/x/inkwell.db', 'a file: URL is a SQLite path')
  t.equal(sqlite.redisUrl, undefined, 'REDIS_URL is optional')
  t.equal(sqlite.databasePoolSize, 10, 'DATABASE_POOL_SIZE defaults to 10')
  t.equal(sqlite.redisKeyPrefix, 'inkwell:', 'REDIS_KEY_PREFIX defaults to inkwell:')
  for (const url of ['postgres://u:p@db.internal:5432/inkwell', 'postgresql://u@localhost/inkwell', 'POSTGRES://u@h/db']) {
    t.equal(loadConfig({ JWT_SECRET: SECRET, DATABASE_URL: url }).databaseUrl, url, `${url} is kept whole`)
  }
  const full = loadConfig({
    JWT_SECRET: SECRET, DATABASE_URL: 'postgres://u@h/db', DATABASE_POOL_SIZE: '25', REDIS_URL: 'redis://cache:6379/2', REDIS_KEY_PREFIX: 'blog:'
  })
  t.match(full, { databasePoolSize: 25, redisUrl: 'redis://cache:6379/2', redisKeyPrefix: 'blog:' })
  t.equal(loadConfig({ JWT_SECRET: SECRET, REDIS_URL: 'rediss://:pw@cache:6380' }).redisUrl, 'rediss://:pw@cache:6380', 'TLS and a password')

  const refused: Array<[Record<string, string>, string, RegExp]> = [
    [{ DATABASE_URL: 'mysql://u@h/db' }, 'DATABASE_URL', /SQLite file path .* postgres:\/\//],
    [{ DATABASE_URL: 'postgres://' }, 'DATABASE_URL', /postgres:\/\/user:password@host/],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE', /between 1 and 1000/],
    [{ DATABASE_POOL_SIZE: 'ten' }, 'DATABASE_POOL_SIZE', /integer/],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL', /redis:\/\/host:6379\/0/],
    [{ REDIS_URL: 'redis://cache:6379/db0' }, 'REDIS_URL', /redis:\/\//],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL', /redis:\/\//]
  ]
  for (const [env, variable, message] of refused) {
    t.throws(() => loadConfig({ JWT_SECRET: SECRET, ...env }), { name: 'ConfigError', variable, message }, `${JSON.stringify(env)} is refused, naming ${variable}`)
  }
  let message = ''
  try {
    loadConfig({ JWT_SECRET: SECRET, REDIS_URL: 'http://:hunter2@cache:6379' })
  } catch (err) {
    message = (err as Error).message
  }
  t.match(message, /REDIS_URL .*http:\/\/\*\*\*@cache/, 'a refused REDIS_URL is named…')
  t.notMatch(message, /hunter2/, '…without its password')
})
