// Passkeys end to end with a real browser authenticator: Debian's Chromium, driven by playwright-core,
// with the virtual authenticator of the DevTools protocol (WebAuthn.addVirtualAuthenticator) answering
// `navigator.credentials` on a page served from APP_URL's origin (http://localhost counts as secure).
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import t from 'tap'
import { buildApp, type App } from '../../src/app.js'
import { build, isCredentials401, isError, loginAs, PASSWORD, type TestUser } from '../helper.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function browser (t: { teardown: (fn: () => unknown) => void }): Promise<{ context: BrowserContext, page: Page }> {
  const profile = mkdtempSync(join(tmpdir(), 'inkwell-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    bypassCSP: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server']
  })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  context.setDefaultTimeout(15_000)
  const page = context.pages()[0] ?? await context.newPage()
  return { context, page }
}

/** Chromium's virtual authenticator: a platform authenticator with resident keys and user verification. */
async function addAuthenticator (context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true }
  })
}

/** The browser's WebAuthn API as these page functions use it (the project compiles without the DOM library). */
interface Browser {
  PublicKeyCredential: { parseCreationOptionsFromJSON: (json: unknown) => unknown, parseRequestOptionsFromJSON: (json: unknown) => unknown }
  navigator: { credentials: Record<'create' | 'get', (options: { publicKey: unknown }) => Promise<{ toJSON: () => CredentialJson }>> }
}
interface CredentialJson { id: string, rawId: string, response: Record<string, string> }

/** In the page: creation options → navigator.credentials.create() → its JSON (not sent). */
const createCredential = (page: Page, options: unknown) => page.evaluate(async (json) => {
  const { PublicKeyCredential, navigator } = globalThis as unknown as Browser
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(json) })
  return credential.toJSON()
}, options)

/** In the page: POST /auth/passkey/options → navigator.credentials.get() → its JSON (not sent). */
const assertion = (page: Page) => page.evaluate(async () => {
  const { PublicKeyCredential, navigator } = globalThis as unknown as Browser
  const options = await (await fetch('/auth/passkey/options', { method: 'POST' })).json()
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) })
  return credential.toJSON()
})

const passkeyLogin = (app: App, response: unknown) => app.inject({ method: 'POST', url: '/auth/passkey', payload: { response } })

t.test('passkeys with a real browser authenticator: register after re-authentication, log in, counter, removal', async (t) => {
  const port = await freePort()
  const origin = `http://localhost:${port}`
  const app = await build(t, { APP_URL: origin })
  app.get('/t/passkeys', async (_request, reply) => reply.type('text/html').send('<!doctype html><title>passkeys</title><p>Inkwell passkey test page</p>'))
  await app.listen({ port, host: 'localhost' })
  const { context, page } = await browser(t)
  await page.goto(`${origin}/t/passkeys`)
  await addAuthenticator(context, page)

  const ada: TestUser = await loginAs(app)
  const options = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: ada.auth, payload })
  isError(t, await options({ password: 'not my password' }), 400, 'Password is incorrect', 'options without the right password')
  const created = await options({ password: PASSWORD })
  t.equal(created.statusCode, 200)
  const creation = created.json()
  t.equal(creation.rp.id, 'localhost', 'rp id: the host of APP_URL')
  t.equal(creation.authenticatorSelection.userVerification, 'required')
  t.equal(creation.authenticatorSelection.residentKey, 'required', 'a discoverable credential')

  const credential = await createCredential(page, creation)
  const register = (response: unknown, name = 'Laptop') => app.inject({ method: 'POST', url: '/users/me/passkeys', headers: ada.auth, payload: { name, response } })
  const registered = await register(credential)
  t.equal(registered.statusCode, 201, 'registered')
  t.match(registered.json(), { id: Number, name: 'Laptop', created_at: String, last_used_at: null })
  const replay = await register(credential, 'Again')
  t.equal(replay.statusCode, 400, 'the same registration again (its challenge is spent): 400')
  t.equal(replay.json().code, 'PASSKEY_REJECTED')
  t.equal((await app.inject({ url: '/users/me', headers: ada.auth })).json().mfa.passkeys, 1, 'GET /users/me counts it')

  const again = (await options({ password: PASSWORD })).json()
  t.same(again.excludeCredentials.map((c: { id: string }) => c.id), [credential.id], 'new options exclude the registered passkey')

  // A login by the browser, with no username: the discoverable credential names the user.
  const first = await assertion(page)
  const held = await assertion(page) // signed after `first`, so its counter is higher; kept for later
  const login = await passkeyLogin(app, held)
  t.equal(login.statusCode, 200, 'a passkey login')
  t.equal(login.headers['cache-control'], 'no-store')
  const auth = { authorization: `Bearer ${login.json().access_token}` }
  const sessions = (await app.inject({ url: '/users/me/sessions', headers: auth })).json()
  t.same(sessions.items.find((s: { current: boolean }) => s.current).amr, ['hwk'], 'the session was opened with a passkey (both factors)')
  t.ok(isCredentials401(await passkeyLogin(app, held)), 'the same assertion again (its challenge is spent): the one 401')
  t.ok(isCredentials401(await passkeyLogin(app, first)), 'an assertion whose counter is behind the stored one (a cloned authenticator): the one 401')
  const listed = (await app.inject({ url: '/users/me/passkeys', headers: ada.auth })).json()
  t.equal(listed.total, 1)
  t.type(listed.items[0].last_used_at, 'string', 'last_used_at moved')

  const late = await assertion(page)
  await app.db.transaction((tx) => tx.q.update(tx.t.webauthnChallenges).set({ expiresAt: 1 }))
  t.ok(isCredentials401(await passkeyLogin(app, late)), 'an expired challenge: the one 401')
  const tampered = await assertion(page)
  const signature = Buffer.from(tampered.response.signature ?? '', 'base64url')
  signature[signature.length - 1]! ^= 1
  t.ok(isCredentials401(await passkeyLogin(app, { ...tampered, response: { ...tampered.response, signature: signature.toString('base64url') } })), 'a bad signature: the one 401')
  t.ok(isCredentials401(await passkeyLogin(app, { ...tampered, id: 'AAAA', rawId: 'AAAA' })), 'an unknown credential: the one 401')

  // Another process on the same database finishes what this one began.
  const other = await buildApp(app.config, { logger: false })
  t.teardown(() => other.close())
  const elsewhere = await assertion(page)
  t.equal((await passkeyLogin(other, elsewhere)).statusCode, 200, 'a ceremony begun on one process finishes on another')

  const bob = await loginAs(app)
  const remove = (user: TestUser, id: number, payload: Record<string, unknown>) => app.inject({ method: 'DELETE', url: `/users/me/passkeys/${id}`, headers: user.auth, payload })
  const id = registered.json().id as number
  isError(t, await remove(bob, id, { password: PASSWORD }), 404, 'Passkey not found', 'another user\'s passkey')
  isError(t, await remove(ada, id, { password: 'wrong password!' }), 400, 'Password is incorrect', 'a wrong password')
  t.equal((await remove(ada, id, { password: PASSWORD })).statusCode, 204, 'removed')
  isError(t, await remove(ada, id, { password: PASSWORD }), 404, 'Passkey not found', 'removed twice')
  t.ok(isCredentials401(await passkeyLogin(app, await assertion(page))), 'a removed passkey no longer logs in')
  const actions = (await app.db.q.select().from(app.db.t.auditLog)).map((e) => e.action)
  t.same(actions, ['mfa_passkey_added', 'mfa_passkey_removed'], 'adding and removing are audited')
})

t.test('a passkey from another origin is refused', async (t) => {
  const port = await freePort()
  const app = await build(t, { APP_URL: `http://localhost:${port}` })
  app.get('/t/passkeys', async (_request, reply) => reply.type('text/html').send('<!doctype html><title>passkeys</title>'))
  await app.listen({ port, host: 'localhost' })
  const { context, page } = await browser(t)
  await page.goto(`http://localhost:${port}/t/passkeys`)
  await addAuthenticator(context, page)
  const ada = await loginAs(app)
  const creation = (await app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: ada.auth, payload: { password: PASSWORD } })).json()
  const credential = await createCredential(page, creation)
  // The same database behind a server whose APP_URL names another origin: the ceremony's origin is wrong there.
  const elsewhere = await buildApp({ ...app.config, appUrl: 'http://localhost:1' }, { logger: false })
  t.teardown(() => elsewhere.close())
  const res = await elsewhere.inject({ method: 'POST', url: '/users/me/passkeys', headers: ada.auth, payload: { name: 'Phish', response: credential } })
  t.equal(res.statusCode, 400, 'registration from another origin: 400')
  t.match(res.json().message, /origin/i, 'the message says why')
})
