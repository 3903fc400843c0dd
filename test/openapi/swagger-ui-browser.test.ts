import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build } from '../helper.js'
import { CHROMIUM, launch, loopbackOnly, OTHER_HOST, watchErrors } from '../support/browser.js'

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
