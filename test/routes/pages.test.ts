// The minimal pages a mailed link opens when APP_URL is left at its default (this server), walked as a
// newcomer would: the link from a mail a real SMTP server received, its GET page, then the form's POST.
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { build, buildWithMail, login, PASSWORD } from '../helper.js'
import { linkOf, waitForMail } from '../support/smtp.js'

const NEW_PASSWORD = 'a freshly chosen passphrase'

// No APP_URL: links point at this server, as on a newcomer's machine.
const withMail = (t: Test) => buildWithMail(t)

const form = (app: App, url: string, fields: Record<string, string>) => app.inject({
  method: 'POST', url, payload: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }
})

/** An HTML page with the pages' headers: its own CSP (a form may post back, nothing else loads), no-store. */
function isPage (t: Test, res: Awaited<ReturnType<App['inject']>>, status: number, title: RegExp, what: string) {
  t.equal(res.statusCode, status, `${what}: ${status}`)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/, `${what}: HTML`)
  t.equal(res.headers['content-security-policy'], "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'", `${what}: no script, no style, forms post back only`)
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no cache keeps the token`)
  t.match(res.body, title, `${what}: says what happened`)
}

const verified = async (app: App, username: string) => {
  const { access } = await login(app, username)
  return (await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${access}` } })).json().email_verified
}

t.test('the verification link opens a page on this server; its button verifies the address, once', async (t) => {
  const { app, inbox } = await withMail(t)
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'ada@example.com', username: 'ada', password: PASSWORD } })
  t.equal(reg.statusCode, 201)
  const { link, token } = linkOf(await waitForMail(inbox, 'ada@example.com', (m) => /verify-email/.test(m.text ?? '')))
  t.equal(link.origin, `http://127.0.0.1:${app.config.port}`, 'with APP_URL at its default the link points at this server')

  const opened = await app.inject({ url: `${link.pathname}${link.search}` })
  isPage(t, opened, 200, /Confirm your e-mail address/, 'GET the link')
  t.match(opened.body, `<form method="post" action="/verify-email"><input type="hidden" name="token" value="${token}">`, 'a form that posts the token back')
  t.equal(await verified(app, 'ada'), false, 'opening the link changes nothing (mail scanners fetch links)')

  isPage(t, await form(app, '/verify-email', { token }), 200, /Your address is confirmed/, 'the button')
  t.equal(await verified(app, 'ada'), true, 'the address is verified')
  const again = await form(app, '/verify-email', { token })
  isPage(t, again, 400, /That did not work/, 'the same link again')
  t.match(again.body, 'Invalid or expired token', 'and why')
})

t.test('the reset link opens a form; a refused password keeps it, a good one is set and ends every session', async (t) => {
  const { app, inbox } = await withMail(t)
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'bob@example.com', username: 'bob', password: PASSWORD } })
  const before = await login(app, 'bob')
  t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: 'bob@example.com' } })).statusCode, 202)
  const { link, token } = linkOf(await waitForMail(inbox, 'bob@example.com', (m) => /reset-password/.test(m.text ?? '')))

  const opened = await app.inject({ url: `${link.pathname}${link.search}` })
  isPage(t, opened, 200, /Choose a new password/, 'GET the link')
  t.match(opened.body, /<input type="password" name="new_password" required minlength="8" maxlength="128" autocomplete="new-password">/, 'a new-password field with the policy\'s bounds')

  const common = await form(app, '/reset-password', { token, new_password: 'password' })
  isPage(t, common, 400, /That did not work/, 'a common password')
  t.match(common.body, 'This password is too common', 'says why')
  t.match(common.body, `value="${token}"`, 'and shows the form again, with the same link')
  t.equal((await login(app, 'bob').then(() => 'ok', () => 'refused')), 'ok', 'the old password still works')

  isPage(t, await form(app, '/reset-password', { token, new_password: NEW_PASSWORD }), 200, /Your password is changed/, 'a good password')
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${before.access}` } })).statusCode, 401, 'the sessions opened before have ended')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'bob', password: PASSWORD } })).statusCode, 401, 'the old password no longer works')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'bob', password: NEW_PASSWORD } })).statusCode, 200, 'the new one does')
  isPage(t, await form(app, '/reset-password', { token, new_password: 'another fine passphrase' }), 400, /That did not work/, 'the link a second time')
})

t.test('a link without its token, or with a hostile one, is a page that shows nothing raw; the pages are not in the API document', async (t) => {
  const app = await build(t)
  for (const path of ['/verify-email', '/reset-password']) {
    const bare = await app.inject({ url: path })
    isPage(t, bare, 400, /This link is incomplete/, `${path} without a token`)
    const hostile = await app.inject({ url: `${path}?token=${encodeURIComponent('"><script>alert(1)</script>')}` })
    t.equal(hostile.statusCode, 200, `${path} with markup in the token: a page`)
    t.notMatch(hostile.body, '<script>', 'the token is escaped')
    t.match(hostile.body, 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"', 'as an attribute value')
    t.equal((await form(app, path, { token: 'x', extra: 'y' })).statusCode, 400, `POST ${path} with an unknown field: 400`)
    t.equal((await app.inject({ url: `${path}?token=x&token=y` })).statusCode, 400, `${path} with the token twice: 400`)
  }
  const paths = Object.keys((await app.inject({ url: '/docs/json' })).json().paths)
  t.notOk(paths.includes('/verify-email') || paths.includes('/reset-password'), 'the API document lists the JSON routes only')
})

t.test('the pages spend the /auth rate limit\'s budget: one count per client for both', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT: '3' })
  const spent = [
    (await app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token: 'unknown' } })).statusCode,
    (await form(app, '/verify-email', { token: 'unknown' })).statusCode,
    (await app.inject({ url: '/reset-password?token=unknown' })).statusCode
  ]
  t.same(spent, [400, 400, 200], 'three requests, at /auth and at the pages')
  const page = await app.inject({ url: '/verify-email?token=unknown' })
  t.equal(page.statusCode, 429, 'the fourth, at a page: over the one budget')
  t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: 'ada@example.com' } })).statusCode, 429, 'and at /auth too')
  t.ok(Number(page.headers['retry-after']) > 0, 'with Retry-After')
})
