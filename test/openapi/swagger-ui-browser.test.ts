import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import t from 'tap'
import { build } from '../helper.js'

// Debian's chromium (`apt-get install chromium`; .ci/run installs it). No Playwright browser download.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// A name that is not loopback to the browser, but resolves to this machine.
const OTHER_HOST = 'inkwell.test'
const WAIT = 15_000

interface Teardown { teardown: (fn: () => unknown) => void }

async function launch (t: Teardown): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'inkwell-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server',
      `--host-resolver-rules=MAP ${OTHER_HOST} 127.0.0.1`
    ]
  })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  context.setDefaultTimeout(WAIT)
  context.setDefaultNavigationTimeout(WAIT)
  return context
}

/** Only this machine is reachable: anything else the page asks for is refused and reported. */
async function loopbackOnly (context: BrowserContext): Promise<string[]> {
  const refused: string[] = []
  await context.route('**/*', async (route) => {
    const { hostname } = new URL(route.request().url())
    if (hostname === '127.0.0.1' || hostname === OTHER_HOST) return route.continue()
    refused.push(route.request().url())
    return route.abort()
  })
  return refused
}

/** What went wrong in the page, for failure messages. */
function watchErrors (page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`))
  page.on('requestfailed', (request) => errors.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`))
  page.on('response', (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`)
  })
  return errors
}

t.test('Swagger UI in real Chromium: Authorize with the password flow, then GET /users/me', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`Chromium is missing at ${CHROMIUM}: apt-get update && apt-get install -y chromium (.ci/run does this)`)
    return
  }
  const app = await build(t)
  const registered = await app.inject({
    method: 'POST', url: '/auth/register',
    payload: { email: 'grace@example.com', username: 'grace_hopper', password: 'a perfectly fine passphrase' }
  })
  t.equal(registered.statusCode, 201, 'a user to log in as')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const context = await launch(t)
  const refused = await loopbackOnly(context)

  await t.test('at 127.0.0.1', async (t) => {
    const page = await context.newPage()
    const errors = watchErrors(page)
    await page.goto(`http://127.0.0.1:${port}/docs`)
    await page.locator('.swagger-ui .info .title').filter({ hasText: 'Inkwell API' }).waitFor()

    // Authorize: the OAuth2 password flow against /auth/token.
    await page.locator('.auth-wrapper button.authorize').click()
    const dialog = page.locator('.modal-ux')
    await dialog.locator('#oauth_username').fill('grace_hopper')
    await dialog.locator('#oauth_password').fill('a perfectly fine passphrase')
    const [token] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/auth/token')),
      dialog.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click()
    ])
    t.equal(token.status(), 200, `the token request succeeds${errors.length > 0 ? ` (${errors.join('; ')})` : ''}`)
    t.equal(token.url(), `http://127.0.0.1:${port}/auth/token`, 'tokenUrl resolves against the page\'s origin')
    t.match(token.request().headers()['content-type'], /^application\/x-www-form-urlencoded/, 'sent as a form')
    await dialog.getByRole('button', { name: 'Remove authorization' }).waitFor()
    await dialog.locator('button.btn-done').click()
    await dialog.waitFor({ state: 'detached' })

    // GET /users/me: expand, "Try it out", "Execute".
    const operation = page.locator('#operations-users-getMe')
    await operation.locator('.opblock-summary').first().click()
    await operation.getByRole('button', { name: 'Try it out' }).click()
    const [me] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/users/me')),
      operation.getByRole('button', { name: 'Execute' }).click()
    ])
    t.equal(me.status(), 200, 'GET /users/me with the token Swagger UI obtained')
    t.match(me.request().headers().authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'Swagger UI sent the bearer token')

    const shown = operation.locator('.live-responses-table')
    await shown.locator('.response-col_status').filter({ hasText: '200' }).waitFor()
    const body = await shown.locator('.response-col_description .highlight-code').first().innerText()
    t.match(body, /"username": "grace_hopper"/, 'the page shows the user in the response body')
    t.match(body, /"email": "grace@example\.com"/)
    t.same(errors, [], 'no failed requests or page errors')
    await page.close()
  })

  await t.test(`under a non-loopback host name (${OTHER_HOST})`, async (t) => {
    const page = await context.newPage()
    const errors = watchErrors(page)
    const response = await page.goto(`http://${OTHER_HOST}:${port}/docs`)
    t.equal(response?.status(), 200)
    // Rendered from /docs/json by the page's scripts: a blank page (assets blocked or upgraded to https) never gets here.
    await page.locator('.swagger-ui .info .title').filter({ hasText: 'Inkwell API' }).waitFor()
    t.equal(new URL(page.url()).protocol, 'http:', 'still plain HTTP')
    t.ok(await page.locator('.swagger-ui .auth-wrapper button.authorize').isVisible(), 'the Authorize button is there')
    t.ok(await page.locator('#operations-users-getMe').isVisible(), 'the operations are listed')
    t.same(errors, [], 'no failed requests or page errors')
    await page.close()
  })

  t.same(refused, [], 'the page asked for nothing off this machine')
})
