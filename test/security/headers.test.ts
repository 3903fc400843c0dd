import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { build, loginAs, TEST_SECRET } from '../helper.js'

const API_CSP = "default-src 'none';object-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'"

const directives = (csp: unknown) => new Map(String(csp).split(';').map((d) => {
  const [name = '', ...values] = d.trim().split(/\s+/)
  return [name, values] as const
}))

t.test('every API response carries the security headers, errors included', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const responses = {
    'a success': await app.inject({ url: '/users/me', headers: user.auth }),
    'a 401': await app.inject({ url: '/users/me' }),
    'a 400': await app.inject({ url: '/posts/abc' }),
    'a 404': await app.inject({ url: '/nowhere' }),
    'a 415': await app.inject({ method: 'POST', url: '/posts', headers: { ...user.auth, 'content-type': 'application/xml' }, payload: '<a/>' })
  }
  for (const [what, res] of Object.entries(responses)) {
    t.match(res.headers, {
      'content-security-policy': API_CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'x-permitted-cross-domain-policies': 'none'
    }, `${what}: helmet's headers with the API's own policy`)
    t.notOk('x-powered-by' in res.headers, `${what}: no X-Powered-By`)
    t.notOk('access-control-allow-origin' in res.headers, `${what}: no CORS header`)
  }
  t.notMatch(responses['a success'].headers['content-security-policy'], /upgrade-insecure-requests/, 'never upgrade-insecure-requests: the server speaks plain HTTP')
})

t.test('Swagger UI gets a policy it can live with, and no more', async (t) => {
  const app = await build(t)
  const page = await app.inject({ url: '/docs/', headers: { host: 'inkwell.internal:3000' } })
  t.equal(page.statusCode, 200, '/docs/ under a non-loopback host name')
  const csp = directives(page.headers['content-security-policy'])
  t.notOk(csp.has('upgrade-insecure-requests'), 'no upgrade-insecure-requests: over plain HTTP the page would stay blank')
  t.same(csp.get('script-src'), ["'self'"], 'scripts from this server only: no inline script, no eval')
  t.same(csp.get('style-src'), ["'self'", "'unsafe-inline'"], 'inline styles, which Swagger UI sets')
  t.same(csp.get('connect-src'), ["'self'"], '"Try it out" and /docs/json: this origin only')
  t.same(csp.get('img-src'), ["'self'", 'data:', 'blob:'], 'icons (data:) and image responses (blob:)')
  t.same(csp.get('object-src'), ["'none'"], 'no plugins')
  t.same(csp.get('base-uri'), ["'none'"], 'no <base> to redirect relative URLs')
  t.same(csp.get('frame-ancestors'), ["'none'"], 'the docs cannot be framed (clickjacking)')

  // The page must work under script-src 'self': every script it loads is a file of this server.
  const scripts = [...page.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
  t.ok(scripts.length > 0, 'the page has scripts')
  for (const [, attributes, inline] of scripts) {
    t.match(attributes, /src="[^"]+"/, `a script from a file: ${attributes!.trim()}`)
    t.equal(inline!.trim(), '', 'with no inline code')
    const src = /src="([^"]+)"/.exec(attributes!)?.[1]
    if (src !== undefined) {
      t.notMatch(src, /^(https?:)?\/\//, `${src} is same-origin`)
      const asset = await app.inject({ url: new URL(src, 'http://x/docs/').pathname })
      t.equal(asset.statusCode, 200, `${src} is served`)
    }
  }
  for (const url of ['/docs/static/swagger-ui.css', '/docs/json']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, `${url} is served`)
    t.notMatch(res.headers['content-security-policy'], /upgrade-insecure-requests/, `${url}: no upgrade-insecure-requests`)
  }
})

t.test('CORS is closed by default', async (t) => {
  const app = await build(t)
  const simple = await app.inject({ url: '/posts', headers: { origin: 'https://evil.example' } })
  t.equal(simple.statusCode, 200, 'the request itself is served (CORS is the browser\'s check)')
  t.notOk('access-control-allow-origin' in simple.headers, 'but no origin is allowed to read it')
  const preflight = await app.inject({
    method: 'OPTIONS', url: '/posts',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' }
  })
  t.equal(preflight.statusCode, 404, 'no preflight is answered')
  t.match(preflight.json(), { statusCode: 404, error: 'Not Found', message: String }, 'in the error shape')
  t.notOk(Object.keys(preflight.headers).some((h) => h.startsWith('access-control-')), 'and no Access-Control-* header is sent')
})

t.test('CORS_ORIGINS opens the API to exactly those origins', async (t) => {
  const app = await build(t, { CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' })
  const user = await loginAs(app)
  const allowed = await app.inject({ url: '/users/me', headers: { ...user.auth, origin: 'https://app.example.com' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com', 'a listed origin is echoed')
  t.match(allowed.headers.vary, /Origin/, 'with Vary: Origin, so caches keep answers apart')
  t.notOk('access-control-allow-credentials' in allowed.headers, 'no credentials: tokens travel in a header, not cookies')
  t.equal(allowed.headers['cross-origin-resource-policy'], 'cross-origin', 'resources (avatars) may be embedded by those origins')

  for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com', 'null', 'https://APP.example.com']) {
    const res = await app.inject({ url: '/posts', headers: { origin } })
    t.notOk('access-control-allow-origin' in res.headers, `${origin}: not allowed`)
  }

  const preflight = await app.inject({
    method: 'OPTIONS', url: '/posts/1',
    headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization,content-type' }
  })
  t.equal(preflight.statusCode, 204, 'a preflight from a listed origin')
  t.equal(preflight.headers['access-control-allow-origin'], 'http://localhost:5173')
  t.match(preflight.headers['access-control-allow-methods'], /PATCH/, 'allows the API\'s methods')
  t.equal(preflight.headers['access-control-allow-headers'], 'Authorization, Content-Type', 'and exactly the headers it needs')
  t.equal(preflight.headers['access-control-max-age'], '600', 'cached for ten minutes')

  const refused = await app.inject({
    method: 'OPTIONS', url: '/posts/1', headers: { origin: 'https://evil.example', 'access-control-request-method': 'DELETE' }
  })
  t.notOk('access-control-allow-origin' in refused.headers, 'a preflight from another origin is not allowed')

  const bare = await app.inject({ method: 'OPTIONS', url: '/posts' })
  t.ok(bare.statusCode < 500 && !('access-control-allow-origin' in bare.headers), 'an OPTIONS without Origin gets nothing either')
})

t.test('CORS_ORIGINS is validated at start-up', async (t) => {
  const load = (value: string) => loadConfig({ JWT_SECRET: TEST_SECRET, CORS_ORIGINS: value })
  t.same(load('').corsOrigins, [], 'empty: closed')
  t.same(load(' https://a.example , http://localhost:5173,http://[::1]:8080 ').corsOrigins,
    ['https://a.example', 'http://localhost:5173', 'http://[::1]:8080'], 'exact origins, trimmed')
  for (const value of ['*', 'null', 'https://a.example/', 'https://a.example/app', 'a.example', 'ftp://a.example',
    'https://A.example', 'https://a.example:443', 'https://a.example,', 'https://*.example.com', 'https://user@a.example']) {
    let error: unknown
    try {
      load(value)
    } catch (err) {
      error = err
    }
    t.ok(error instanceof ConfigError && error.variable === 'CORS_ORIGINS' && error.message.includes('CORS_ORIGINS'),
      `${JSON.stringify(value)}: a ConfigError naming CORS_ORIGINS`)
  }
})
