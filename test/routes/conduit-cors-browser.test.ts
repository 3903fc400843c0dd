import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build, PASSWORD } from '../helper.js'
import { CHROMIUM, launch, OTHER_HOST } from '../support/browser.js'

// A RealWorld front-end served from another origin calls /api from real Chromium with fetch: the
// preflights (JSON bodies, the Authorization header) and the answers pass CORS exactly for the
// origins in CORS_ORIGINS.

/** The front-end: registers, reads the user with its token, writes an article; what it saw goes into `window.outcome`. */
const page = (api: string) => `<!doctype html><meta charset="utf-8"><title>front-end</title><script>
window.outcome = (async () => {
  const json = { 'Content-Type': 'application/json' }
  try {
    const reg = await fetch('${api}/api/users', { method: 'POST', headers: json, body: JSON.stringify({ user: { username: 'cors', email: 'cors@example.com', password: ${JSON.stringify(PASSWORD)} } }) })
    const { user } = await reg.json()
    const auth = { ...json, Authorization: 'Token ' + user.token }
    const me = await fetch('${api}/api/user', { headers: auth })
    const article = await fetch('${api}/api/articles', { method: 'POST', headers: auth, body: JSON.stringify({ article: { title: 'Across origins', description: 'd', body: 'b' } }) })
    const refused = await fetch('${api}/api/user', { headers: { Authorization: 'Token nonsense' } })
    return { ok: true, register: reg.status, me: me.status, username: (await me.json()).user.username, article: article.status,
      slug: (await article.json()).article.slug, refused: refused.status, refusedBody: await refused.json() }
  } catch (err) {
    return { ok: false, error: String(err) }
  }
})()
</script>`

async function serve (t: { teardown: (fn: () => unknown) => void }, body: (host: string) => string): Promise<number> {
  const server: Server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body(request.headers.host ?? ''))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as AddressInfo).port
}

t.test('a front-end on another origin uses /api from Chromium', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`Chromium is missing at ${CHROMIUM}: apt-get update && apt-get install -y chromium (.ci/run does this)`)
    return
  }
  let apiPort = 0
  const frontPort = await serve(t, () => page(`http://127.0.0.1:${apiPort}`))
  const front = `http://${OTHER_HOST}:${frontPort}`
  const app = await build(t, { CORS_ORIGINS: front })
  await app.listen({ host: '127.0.0.1', port: 0 })
  apiPort = (app.server.address() as AddressInfo).port

  // No request interception here (the page asks for nothing else): with it, Chromium would let
  // Playwright answer the preflights instead of the server.
  const context = await launch(t)
  // Preflights happen below the page (Playwright does not report them): the server counts them.
  const preflights: string[] = []
  app.server.on('request', (request: { method?: string, url?: string }) => { if (request.method === 'OPTIONS') preflights.push(request.url ?? '') })
  const tab = await context.newPage()

  await tab.goto(`${front}/`)
  const outcome = await tab.evaluate(async () => await (globalThis as unknown as { outcome: Promise<Record<string, unknown>> }).outcome)
  t.match(outcome, { ok: true, register: 201, me: 200, username: 'cors', article: 201, slug: 'across-origins', refused: 401 }, 'every call went through, across origins')
  t.same(outcome.refusedBody, { errors: { body: ['Could not validate credentials'] } }, 'and a refusal reads as Conduit\'s error')
  t.ok(preflights.includes('/api/user') && preflights.includes('/api/articles'), `Chromium preflighted the calls with JSON or a token (${preflights.join(', ')})`)

  // The same page from an origin not in CORS_ORIGINS: the browser refuses to hand over the answers.
  const stranger = await context.newPage()
  await stranger.goto(`http://127.0.0.1:${frontPort}/`)
  const blocked = await stranger.evaluate(async () => await (globalThis as unknown as { outcome: Promise<Record<string, unknown>> }).outcome)
  t.match(blocked, { ok: false, error: /TypeError|Failed to fetch/ }, 'another origin: fetch fails')
  const preflight = await app.inject({
    method: 'OPTIONS', url: '/api/user', headers: { origin: 'http://127.0.0.1:1', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }
  })
  t.equal(preflight.headers['access-control-allow-origin'], undefined, 'no Access-Control-Allow-Origin for it')
})
