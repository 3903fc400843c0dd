import type { InjectOptions } from 'fastify'
import t from 'tap'
import type { App } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { build, loginAs, PASSWORD, TEST_SECRET } from '../helper.js'

// Who "the client" is decides both throttles. Without a trusted proxy it is the socket's peer, and
// X-Forwarded-For (or Forwarded, X-Real-IP) from the client is only text: it must not reset anything.

const FORGED = (i: number) => ({
  'x-forwarded-for': `203.0.113.${i}`,
  forwarded: `for=198.51.100.${i}`,
  'x-real-ip': `192.0.2.${i}`
})

/** Adds a route that tells what the server takes for the client's address. */
function withIpProbe (app: App): App {
  app.get('/t/ip', async (request) => ({ ip: request.ip }))
  return app
}

const ipOf = async (app: App, options: Omit<InjectOptions, 'url'>) => (await app.inject({ ...options, url: '/t/ip' })).json().ip as string

function loginAttempt (app: App, username: string, password: string, options: Omit<InjectOptions, 'url' | 'method' | 'payload'> = {}) {
  return app.inject({ ...options, method: 'POST', url: '/auth/token', payload: { username, password } })
}

t.test('TRUST_PROXY off (the default): forwarded headers change nothing', async (t) => {
  const app = withIpProbe(await build(t, { LOGIN_FAILURE_LIMIT: '3' }))
  t.equal(await ipOf(app, { headers: FORGED(1) }), '127.0.0.1', 'request.ip is the peer, whatever the headers say')

  const alice = await loginAs(app)
  for (let i = 1; i <= 3; i++) {
    const res = await loginAttempt(app, alice.username, 'not the password', { headers: FORGED(i) })
    t.equal(res.statusCode, 401, `failure ${i}, claiming to come from 203.0.113.${i}`)
  }
  const fourth = await loginAttempt(app, alice.username, PASSWORD, { headers: FORGED(99) })
  t.equal(fourth.statusCode, 429, 'a fourth attempt from a "new" forwarded address is still throttled')
  t.equal(fourth.json().code, 'LOGIN_THROTTLED', 'the login throttle\'s 429')
  t.ok(Number(fourth.headers['retry-after']) > 0, 'with Retry-After')

  const elsewhere = await loginAttempt(app, alice.username, PASSWORD, { remoteAddress: '192.0.2.200', headers: FORGED(1) })
  t.equal(elsewhere.statusCode, 200, 'another peer is another client: the owner is not locked out')
})

t.test('TRUST_PROXY off: the /auth rate limit cannot be reset with forwarded headers', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT: '3' })
  for (let i = 1; i <= 3; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: FORGED(i), payload: { refresh_token: 'x' } })
    t.equal(res.statusCode, 204, `request ${i}`)
  }
  const fourth = await app.inject({ method: 'POST', url: '/auth/logout', headers: FORGED(42), payload: { refresh_token: 'x' } })
  t.equal(fourth.statusCode, 429, 'the fourth, under a new forwarded address, is a 429')
  t.match(fourth.json(), { statusCode: 429, error: 'Too Many Requests', message: String }, 'in the error shape')
  t.ok(Number(fourth.headers['retry-after']) > 0, 'with Retry-After')
  const other = await app.inject({ method: 'POST', url: '/auth/logout', remoteAddress: '192.0.2.7', payload: { refresh_token: 'x' } })
  t.equal(other.statusCode, 204, 'another peer has its own budget')
})

t.test('TRUST_PROXY names the proxy: its X-Forwarded-For tells clients apart, and only its', async (t) => {
  const app = withIpProbe(await build(t, { TRUST_PROXY: '127.0.0.1', LOGIN_FAILURE_LIMIT: '3', AUTH_RATE_LIMIT: '5' }))
  const via = (xff: string) => ({ headers: { 'x-forwarded-for': xff } })

  t.equal(await ipOf(app, via('203.0.113.1')), '203.0.113.1', 'through the proxy: the address it forwards')
  t.equal(await ipOf(app, via('198.51.100.66, 203.0.113.1')), '203.0.113.1',
    'a client that forges its own X-Forwarded-For gets the address the proxy appended, not its forgery')
  t.equal(await ipOf(app, { remoteAddress: '192.0.2.50', ...via('203.0.113.1') }), '192.0.2.50',
    'a peer that is not the proxy is believed about nothing')

  const alice = await loginAs(app)
  for (let i = 1; i <= 3; i++) {
    t.equal((await loginAttempt(app, alice.username, 'wrong password', via(`198.51.100.${i}, 203.0.113.1`))).statusCode, 401, `failure ${i} from 203.0.113.1`)
  }
  t.equal((await loginAttempt(app, alice.username, PASSWORD, via('198.51.100.99, 203.0.113.1'))).statusCode, 429,
    'the same client is throttled, whatever it prepends')
  t.equal((await loginAttempt(app, alice.username, PASSWORD, via('203.0.113.2'))).statusCode, 200,
    'another client behind the proxy logs in: the throttle is per client')

  const logout = (xff: string) => app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: 'x' }, ...via(xff) })
  const budget: number[] = []
  for (let i = 0; i < 6; i++) budget.push((await logout('203.0.113.9')).statusCode)
  t.same(budget, [204, 204, 204, 204, 204, 429], 'the rate limit counts one client behind the proxy')
  t.equal((await logout('203.0.113.10')).statusCode, 204, 'and not its neighbour')
})

t.test('TRUST_PROXY takes subnets and named ranges', async (t) => {
  const subnet = withIpProbe(await build(t, { TRUST_PROXY: '10.0.0.0/8, ::1' }))
  t.equal(await ipOf(subnet, { remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '203.0.113.5' } }), '203.0.113.5', 'a proxy inside 10.0.0.0/8')
  t.equal(await ipOf(subnet, { headers: { 'x-forwarded-for': '203.0.113.5' } }), '127.0.0.1', '127.0.0.1 is not in that list')
  const named = withIpProbe(await build(t, { TRUST_PROXY: 'loopback' }))
  t.equal(await ipOf(named, { headers: { 'x-forwarded-for': '203.0.113.6' } }), '203.0.113.6', '"loopback" trusts 127.0.0.1')
})

t.test('TRUST_PROXY is validated at start-up', async (t) => {
  const load = (value: string) => loadConfig({ JWT_SECRET: TEST_SECRET, TRUST_PROXY: value })
  for (const value of ['', 'false']) t.equal(load(value).trustProxy, false, `${JSON.stringify(value)}: off`)
  t.same(load('127.0.0.1').trustProxy, ['127.0.0.1'], 'one address')
  t.same(load(' 10.0.0.0/8 , fd00::/8,loopback ').trustProxy, ['10.0.0.0/8', 'fd00::/8', 'loopback'], 'subnets and names, trimmed')
  for (const value of ['true', '1', '2', 'yes', '*', '10.0.0.0/33', '300.1.1.1', '10.0.0.1,', 'loopback,somewhere', 'example.com', '::1/129', '10.0.0.0/8/8']) {
    let error: unknown
    try {
      load(value)
    } catch (err) {
      error = err
    }
    t.ok(error instanceof ConfigError && error.variable === 'TRUST_PROXY' && error.message.includes('TRUST_PROXY'),
      `${JSON.stringify(value)}: a ConfigError naming TRUST_PROXY`)
  }
})
