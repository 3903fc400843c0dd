import type { AddressInfo } from 'node:net'
import t from 'tap'
import { bearer, createInkwellClient } from '../../clients/index.js'
import { build } from '../helper.js'
import { linkOf, smtpServer, waitForMail } from '../support/smtp.js'

const CREDENTIALS_401 = {
  statusCode: 401, error: 'Unauthorized', message: 'Could not validate credentials', code: 'INVALID_CREDENTIALS'
}

// Talks to a real listening server, and only through the client generated from openapi.json.
t.test('a whole user journey through the generated client', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const baseUrl = `http://127.0.0.1:${port}`
  // One timeout bounds the whole journey.
  const signal = AbortSignal.timeout(30_000)
  // Anonymous calls, and calls that pass a token by hand.
  const client = createInkwellClient(baseUrl, { signal })
  // Ada's calls: the bearer middleware sends her current access token once she has one.
  let adaToken: string | undefined = undefined
  const ada = createInkwellClient(baseUrl, { signal })
  ada.use(bearer(() => adaToken))
  const password = 'correct horse battery staple'

  // Register.
  const registered = await ada.POST('/auth/register', {
    body: { email: 'Ada@Example.com', username: 'ada', password }
  })
  t.equal(registered.response.status, 201, 'register: 201')
  t.match(registered.data, { username: 'ada', email: 'ada@example.com', role: 'user', is_active: true, avatar_url: null })
  t.notOk(registered.data && 'password_hash' in registered.data, 'no hash in the private view')

  // Log in as OAuth2 clients do: a form.
  const login = await ada.POST('/auth/token', {
    body: { username: 'ada', password },
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  t.equal(login.response.status, 200, 'log in with a form: 200')
  t.equal(login.response.headers.get('cache-control'), 'no-store')
  t.match(login.data, { token_type: 'bearer', expires_in: 900, access_token: String, refresh_token: String })
  const first = login.data!

  // Refresh (JSON this time): a new pair, and the new access token works.
  const refreshed = await ada.POST('/auth/token', {
    body: { grant_type: 'refresh_token', refresh_token: first.refresh_token }
  })
  t.equal(refreshed.response.status, 200, 'refresh: 200')
  const pair = refreshed.data!
  t.not(pair.refresh_token, first.refresh_token, 'the refresh token rotates')
  adaToken = pair.access_token
  const me = await ada.GET('/users/me')
  t.equal(me.response.status, 200)
  t.equal(me.data?.username, 'ada', 'the refreshed access token is Ada\'s')
  t.ok(me.data?.permissions.includes('post:create'))

  // Create a post and like it.
  const created = await ada.POST('/posts', { body: { title: 'Hello', content: 'First post through the generated client.' } })
  t.equal(created.response.status, 201, 'create a post: 201')
  t.match(created.data, { title: 'Hello', author: { id: me.data?.id, username: 'ada' }, like_count: 0, liked: false })
  const postId = created.data!.id

  const liked = await ada.PUT('/posts/{id}/like', { params: { path: { id: postId } } })
  t.equal(liked.response.status, 204, 'like: 204')
  t.equal(liked.data, undefined, 'no body')

  // Read it with a token (liked) and without (no `liked` at all).
  const withToken = await ada.GET('/posts/{id}', { params: { path: { id: postId } } })
  t.equal(withToken.response.status, 200)
  t.match(withToken.data, { id: postId, like_count: 1, liked: true })
  const anonymous = await client.GET('/posts/{id}', { params: { path: { id: postId } } })
  t.equal(anonymous.response.status, 200)
  t.equal(anonymous.data?.like_count, 1)
  t.notOk(anonymous.data && 'liked' in anonymous.data, 'anonymous: no `liked`')
  const page = await client.GET('/posts', { params: { query: { limit: 10 } } })
  t.match(page.data, { total: 1, skip: 0, limit: 10, has_more: false, items: [{ id: postId }] })

  // 403: another user may not edit Ada's post.
  await client.POST('/auth/register', { body: { email: 'bob@example.com', username: 'bob', password } })
  const bob = (await client.POST('/auth/token', { body: { username: 'bob@example.com', password } })).data!
  const edit = await client.PATCH('/posts/{id}', {
    params: { path: { id: postId } }, body: { title: 'Mine now' }, headers: { authorization: `Bearer ${bob.access_token}` }
  })
  t.equal(edit.response.status, 403, 'editing another user\'s post: 403')
  t.match(edit.error, { statusCode: 403, error: 'Forbidden', message: 'Not your post' })
  t.equal(edit.data, undefined)

  // 401: no token at all.
  const noToken = await client.POST('/posts', { body: { title: 'Anonymous', content: 'Should not land.' } })
  t.equal(noToken.response.status, 401, 'creating a post without a token: 401')
  t.equal(noToken.response.headers.get('www-authenticate'), 'Bearer')
  t.same(noToken.error, CREDENTIALS_401)

  // Log out: the session's refresh token and access token stop working.
  const logout = await ada.POST('/auth/logout', { body: { refresh_token: pair.refresh_token } })
  t.equal(logout.response.status, 204, 'log out: 204')
  const afterLogout = await client.POST('/auth/token', { body: { grant_type: 'refresh_token', refresh_token: pair.refresh_token } })
  t.equal(afterLogout.response.status, 401, 'the logged-out refresh token: 401')
  t.match(afterLogout.error, { statusCode: 401, error: 'Unauthorized' })
  const meAfter = await ada.GET('/users/me')
  t.equal(meAfter.response.status, 401, 'the logged-out session\'s access token: 401')
  t.same(meAfter.error, CREDENTIALS_401)

  // Bob's session is untouched.
  const bobMe = await client.GET('/users/me', { headers: { authorization: `Bearer ${bob.access_token}` } })
  t.equal(bobMe.data?.username, 'bob')
})

// A user who forgot the password gets back in, through the client and a real mailbox.
t.test('a password reset through the generated client, with the link from a real SMTP server', async (t) => {
  const inbox = await smtpServer(t)
  const app = await build(t, { SMTP_URL: `smtp://127.0.0.1:${inbox.port}`, APP_URL: 'https://app.inkwell.test' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const client = createInkwellClient(`http://127.0.0.1:${port}`, { signal: AbortSignal.timeout(30_000) })
  const old = 'correct horse battery staple'
  const fresh = 'a new and better passphrase'

  await client.POST('/auth/register', { body: { email: 'grace@example.com', username: 'grace', password: old } })
  const before = (await client.POST('/auth/token', { body: { username: 'grace', password: old } })).data!

  const asked = await client.POST('/auth/password-reset', { body: { email: 'grace@example.com' } })
  t.equal(asked.response.status, 202, 'ask for a reset: 202')
  t.ok(asked.data?.message, 'with a message')
  const mail = await waitForMail(inbox, 'grace@example.com', (m) => /reset-password/.test(m.text ?? ''))
  const { token } = linkOf(mail)

  const weak = await client.POST('/auth/password-reset/confirm', { body: { token, new_password: 'password1' } })
  t.equal(weak.response.status, 400, 'a common password: 400')
  t.match(weak.error, { statusCode: 400, error: 'Bad Request', message: 'This password is too common; choose another one' })

  const reset = await client.POST('/auth/password-reset/confirm', { body: { token, new_password: fresh } })
  t.equal(reset.response.status, 204, 'confirm with the mailed token: 204')
  const again = await client.POST('/auth/password-reset/confirm', { body: { token, new_password: 'yet another passphrase' } })
  t.match(again.error, { statusCode: 400, message: 'Invalid or expired token' }, 'the link works once')

  const stale = await client.GET('/users/me', { headers: { authorization: `Bearer ${before.access_token}` } })
  t.same(stale.error, CREDENTIALS_401, 'the session from before the reset is over')
  t.equal((await client.POST('/auth/token', { body: { username: 'grace', password: old } })).response.status, 401, 'the old password is refused')
  const now = await client.POST('/auth/token', { body: { username: 'grace', password: fresh } })
  t.equal(now.response.status, 200, 'the new password logs in')
  const sessions = await client.GET('/users/me/sessions', { headers: { authorization: `Bearer ${now.data!.access_token}` } })
  t.match(sessions.data, { total: 1, items: [{ current: true }] }, 'one open session: this one')
})
