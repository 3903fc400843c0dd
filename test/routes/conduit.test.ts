import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { build, buildWithMail, countRows, loginAs, PASSWORD, setActive } from '../helper.js'
import { enableTotp } from '../support/mfa.js'
import { linkOf, waitForMail } from '../support/smtp.js'

// The Conduit API (/api), walked as a RealWorld front-end walks it: `Authorization: Token <jwt>`,
// envelopes in and out, `{"errors": {"body": [...]}}` with 422 for what Inkwell answers 400 or 409.

interface Client { token: string, username: string, email: string, headers: { authorization: string } }

const send = (app: App, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, client?: Client, payload?: object) =>
  app.inject({ method, url: `/api${url}`, headers: client?.headers ?? {}, ...(payload !== undefined && { payload }) })

async function register (t: Test, app: App, username: string): Promise<Client> {
  const email = `${username.toLowerCase()}@example.com`
  const res = await send(app, 'POST', '/users', undefined, { user: { username, email, password: PASSWORD } })
  t.equal(res.statusCode, 201, `register ${username}: 201`)
  const { token } = res.json().user
  return { token, username, email, headers: { authorization: `Token ${token}` } }
}

/** Conduit's error: exactly `{errors: {body: [message]}}`, with this status, as JSON. */
function conduitError (t: Test, res: LightMyRequestResponse, status: number, message: string | RegExp, what: string) {
  t.equal(res.statusCode, status, `${what}: ${status}`)
  t.match(String(res.headers['content-type']), /^application\/json/, `${what}: JSON`)
  const body = res.json()
  t.same(Object.keys(body), ['errors'], `${what}: the errors envelope only`)
  t.same(Object.keys(body.errors ?? {}), ['body'], `${what}: errors.body only`)
  t.equal(body.errors?.body?.length, 1, `${what}: one message`)
  if (typeof message === 'string') t.equal(body.errors?.body?.[0], message, `${what}: "${message}"`)
  else t.match(body.errors?.body?.[0], message, `${what}: ${message}`)
}

const ARTICLE_KEYS = ['author', 'body', 'createdAt', 'description', 'favorited', 'favoritesCount', 'slug', 'tagList', 'title', 'updatedAt']
const dragon = { title: 'How to train your dragon', description: 'Ever wonder how?', body: 'You have to believe', tagList: ['dragons', 'Training'] }

t.test('a front-end\'s walk: register, log in, write, tag, favorite, comment, follow, feed, delete', async (t) => {
  const app = await build(t)
  const jake = await register(t, app, 'Jake')
  const res = await send(app, 'POST', '/users', undefined, { user: { username: 'Jane', email: 'jane@example.com', password: PASSWORD } })
  t.same(Object.keys(res.json().user).sort(), ['bio', 'email', 'image', 'token', 'username'], 'registration answers the User')
  t.match(res.json().user, { username: 'Jane', email: 'jane@example.com', bio: '', image: null })
  t.equal(res.headers['cache-control'], 'no-store', 'a token is never cached')
  const jane = { token: res.json().user.token as string, username: 'Jane', email: 'jane@example.com', headers: { authorization: `Token ${res.json().user.token}` } }

  const login = await send(app, 'POST', '/users/login', undefined, { user: { email: 'JAKE@example.com', password: PASSWORD } })
  t.equal(login.statusCode, 200, 'login: 200')
  t.match(login.json().user, { email: 'jake@example.com', username: 'Jake' })
  t.not(login.json().user.token, jake.token, 'each login is a session of its own')
  t.equal(login.headers['cache-control'], 'no-store')
  const me = await send(app, 'GET', '/user', jake)
  t.same(me.json(), { user: { email: 'jake@example.com', token: jake.token, username: 'Jake', bio: '', image: null } }, 'GET /user: the caller, with the token sent')

  const updated = await send(app, 'PUT', '/user', jake, { user: { bio: 'I like to skateboard', image: '' } })
  t.equal(updated.statusCode, 200)
  t.match(updated.json().user, { bio: 'I like to skateboard', image: null, username: 'Jake' }, 'bio changed; an empty image means none')
  t.equal((await send(app, 'PUT', '/user', jane, { user: { bio: null, image: null } })).json().user.bio, '', 'a null bio is an empty one')

  const created = await send(app, 'POST', '/articles', jake, { article: dragon })
  t.equal(created.statusCode, 201, 'create: 201')
  const article = created.json().article
  t.same(Object.keys(article).sort(), ARTICLE_KEYS, 'exactly the Article fields')
  t.match(article, {
    slug: 'how-to-train-your-dragon', title: dragon.title, description: dragon.description, body: dragon.body,
    tagList: ['dragons', 'training'], favorited: false, favoritesCount: 0,
    author: { username: 'Jake', bio: 'I like to skateboard', image: null, following: false }
  })
  t.equal(article.createdAt, article.updatedAt)
  const twin = (await send(app, 'POST', '/articles', jane, { article: { ...dragon, tagList: undefined } })).json().article
  t.match(twin.slug, /^how-to-train-your-dragon-\d+$/, 'an equal title: another slug')
  t.same(twin.tagList, [], 'no tagList: no tags')

  const list = (await send(app, 'GET', '/articles')).json()
  t.equal(list.articlesCount, 2)
  t.same(list.articles.map((a: { slug: string }) => a.slug), [twin.slug, article.slug], 'newest first')
  t.notOk('body' in list.articles[0], 'a list\'s articles have no body')
  t.same((await send(app, 'GET', '/articles?tag=dragons')).json().articles.map((a: { slug: string }) => a.slug), [article.slug], 'by tag')
  t.same((await send(app, 'GET', '/articles?author=jane')).json().articles.map((a: { slug: string }) => a.slug), [twin.slug], 'by author (any case)')
  t.same((await send(app, 'GET', '/articles?author=nobody')).json(), { articles: [], articlesCount: 0 }, 'an unknown author: an empty list')
  t.same((await send(app, 'GET', '/articles?limit=1&offset=1')).json().articles.map((a: { slug: string }) => a.slug), [article.slug], 'limit and offset')

  const fav = await send(app, 'POST', `/articles/${article.slug}/favorite`, jane)
  t.equal(fav.statusCode, 200, 'favorite: 200')
  t.match(fav.json().article, { favorited: true, favoritesCount: 1 })
  t.match((await send(app, 'POST', `/articles/${article.slug}/favorite`, jane)).json().article, { favoritesCount: 1 }, 'twice: still one')
  t.same((await send(app, 'GET', '/articles?favorited=Jane', jane)).json().articles.map((a: { slug: string, favorited: boolean }) => [a.slug, a.favorited]),
    [[article.slug, true]], 'favorited by a username, and favorited for the caller')
  t.match((await send(app, 'GET', `/articles/${article.slug}`)).json().article, { favorited: false, favoritesCount: 1 }, 'anonymous: not favorited')

  const comment = await send(app, 'POST', `/articles/${article.slug}/comments`, jane, { comment: { body: 'His name was my name too.' } })
  t.equal(comment.statusCode, 200, 'comment: 200, as the specification says')
  t.same(Object.keys(comment.json().comment).sort(), ['author', 'body', 'createdAt', 'id', 'updatedAt'])
  t.match(comment.json().comment, { body: 'His name was my name too.', author: { username: 'Jane', following: false } })
  const comments = (await send(app, 'GET', `/articles/${article.slug}/comments`)).json().comments
  t.equal(comments.length, 1)

  const followed = await send(app, 'POST', '/profiles/jake/follow', jane)
  t.equal(followed.statusCode, 200)
  t.same(followed.json(), { profile: { username: 'Jake', bio: 'I like to skateboard', image: null, following: true } })
  t.equal((await send(app, 'GET', '/profiles/Jake', jane)).json().profile.following, true)
  t.equal((await send(app, 'GET', '/profiles/Jake')).json().profile.following, false, 'anonymous: false')
  const feed = (await send(app, 'GET', '/articles/feed', jane)).json()
  t.same(feed.articles.map((a: { slug: string }) => a.slug), [article.slug], 'the feed: the followed author\'s articles')
  t.equal(feed.articlesCount, 1)
  t.equal(feed.articles[0].author.following, true)
  t.same((await send(app, 'DELETE', '/profiles/jake/follow', jane)).json().profile.following, false, 'unfollow')
  t.same((await send(app, 'GET', '/articles/feed', jane)).json(), { articles: [], articlesCount: 0 }, 'the feed after an unfollow')

  t.same((await send(app, 'GET', '/tags')).json(), { tags: ['dragons', 'training'] }, 'the tags in use')

  const renamed = await send(app, 'PUT', `/articles/${article.slug}`, jake, { article: { title: 'Did you train your dragon?' } })
  t.equal(renamed.json().article.slug, 'did-you-train-your-dragon', 'a new title: a new slug')
  conduitError(t, await send(app, 'GET', `/articles/${article.slug}`), 404, 'Post not found', 'the old slug')
  const slug = renamed.json().article.slug as string
  t.match((await send(app, 'DELETE', `/articles/${slug}/favorite`, jane)).json().article, { favorited: false, favoritesCount: 0 }, 'unfavorite')

  const gone = await send(app, 'DELETE', `/articles/${slug}`, jake)
  t.equal(gone.statusCode, 204, 'delete: 204')
  conduitError(t, await send(app, 'GET', `/articles/${slug}/comments`), 404, 'Post not found', 'a deleted article\'s comments')
  t.equal(await countRows(app, app.db.t.comments), 0, 'and they are gone')
})

t.test('ownership, comments and the rules the specification leaves to the server', async (t) => {
  const app = await build(t)
  const jake = await register(t, app, 'jake')
  const jane = await register(t, app, 'jane')
  const slug = (await send(app, 'POST', '/articles', jake, { article: dragon })).json().article.slug as string
  const id = (await send(app, 'POST', `/articles/${slug}/comments`, jake, { comment: { body: 'mine' } })).json().comment.id as number

  conduitError(t, await send(app, 'DELETE', `/articles/${slug}/comments/${id}`, jane), 403, 'Not your comment', 'a stranger\'s comment')
  conduitError(t, await send(app, 'PUT', `/articles/${slug}`, jane, { article: { body: 'x' } }), 403, 'Not your post', 'a stranger\'s article')
  conduitError(t, await send(app, 'DELETE', `/articles/${slug}`, jane), 403, 'Not your post', 'deleting a stranger\'s article')
  conduitError(t, await send(app, 'DELETE', `/articles/${slug}/comments/999999`, jake), 404, 'Comment not found', 'no such comment')
  conduitError(t, await send(app, 'DELETE', `/articles/nope/comments/${id}`, jake), 404, 'Post not found', 'no such article: its comment is not looked for')
  conduitError(t, await send(app, 'POST', '/articles/nope/favorite', jane), 404, 'Post not found', 'favoriting nothing')
  conduitError(t, await send(app, 'GET', '/profiles/nobody'), 404, 'User not found', 'no such profile')
  conduitError(t, await send(app, 'POST', '/profiles/jake/follow', jake), 422, 'You cannot follow yourself', 'following oneself')
  t.equal((await send(app, 'DELETE', `/articles/${slug}/comments/${id}`, jake)).statusCode, 204, 'its author deletes it')

  // Strict bodies and Inkwell's bounds, as Conduit's 422; nothing is written.
  const before = await countRows(app, app.db.t.posts)
  for (const [payload, message, what] of [
    [{ article: { ...dragon, author: 'jane' } }, /unknown property "author"/, 'an unknown field'],
    [{ article: dragon, extra: 1 }, /unknown property "extra"/, 'an unknown field beside the envelope'],
    [dragon, /article/, 'no envelope'],
    [{ article: { title: 'x', body: 'y' } }, /description/, 'no description'],
    [{ article: { ...dragon, title: '' } }, /title/, 'an empty title'],
    [{ article: { ...dragon, tagList: ['a,b'] } }, /tagList/, 'a tag with a comma'],
    [{ article: { ...dragon, tagList: Array.from({ length: 11 }, (_, i) => `t${i}`) } }, /tagList/, 'eleven tags']
  ] as const) {
    conduitError(t, await send(app, 'POST', '/articles', jake, payload), 422, message, what)
  }
  t.equal(await countRows(app, app.db.t.posts), before, 'no article written')
  conduitError(t, await send(app, 'POST', `/articles/${slug}/comments`, jake, { comment: { body: '  ' } }), 422, /body/, 'a blank comment')
  conduitError(t, await send(app, 'GET', '/articles?limit=101'), 422, /limit/, 'limit 101')
  conduitError(t, await send(app, 'GET', '/articles?offset=-1'), 422, /offset/, 'a negative offset')

  conduitError(t, await send(app, 'POST', '/users', undefined, { user: { username: 'jake', email: 'other@example.com', password: PASSWORD } }), 422, 'Username already taken', 'a taken username')
  conduitError(t, await send(app, 'POST', '/users', undefined, { user: { username: 'other', email: 'JAKE@example.com', password: PASSWORD } }), 422, 'Email already registered', 'a taken e-mail')
  conduitError(t, await send(app, 'POST', '/users', undefined, { user: { username: 'weak', email: 'weak@example.com', password: 'password123' } }), 422, /common/i, 'a common password: the same policy')
  conduitError(t, await send(app, 'POST', '/users', undefined, { user: { username: 'x', email: 'x@example.com', password: PASSWORD } }), 422, /username/, 'a username too short')

  conduitError(t, await send(app, 'PUT', '/user', jake, { user: { password: 'another fine passphrase' } }), 422, /POST \/users\/me\/password/, 'a new password: refused here')
  conduitError(t, await send(app, 'PUT', '/user', jake, { user: { image: 'https://elsewhere.example/me.png' } }), 422, /PUT \/users\/me\/avatar/, 'an image URL of elsewhere')
  conduitError(t, await send(app, 'PUT', '/user', jake, { user: { token: jake.token } }), 422, /unknown property "token"/, 'the token sent back')
  t.equal((await send(app, 'GET', '/user', jake)).json().user.bio, '', 'nothing changed')
})

t.test('tokens: the Token scheme, Inkwell sessions, the one 401 in Conduit\'s shape', async (t) => {
  const app = await build(t, { CONDUIT_TOKEN_TTL: '3600' })
  const jake = await register(t, app, 'jake')
  const claims = JSON.parse(Buffer.from(jake.token.split('.')[1] as string, 'base64url').toString())
  t.equal(claims.exp - claims.iat, 3600, 'the token lives CONDUIT_TOKEN_TTL seconds')
  t.equal(claims.type, 'access', 'an access token')

  for (const [headers, what] of [
    [{}, 'no token'],
    [{ authorization: `Bearer ${jake.token}` }, 'the Bearer scheme on /api'],
    [{ authorization: `Token ${jake.token}x` }, 'a tampered token'],
    [{ authorization: 'Token' }, 'the scheme alone']
  ] as const) {
    const res = await app.inject({ url: '/api/user', headers })
    conduitError(t, res, 401, 'Could not validate credentials', what)
    t.equal(res.headers['www-authenticate'], 'Token', `${what}: WWW-Authenticate names the Token scheme`)
  }
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Token ${jake.token}` } })).statusCode, 401, 'the Token scheme is not Inkwell\'s')
  const inkwell = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${jake.token}` } })
  t.equal(inkwell.statusCode, 200, 'the same token is an Inkwell access token under Bearer')

  const sessions = (await app.inject({ url: '/users/me/sessions', headers: { authorization: `Bearer ${jake.token}` } })).json()
  t.equal(sessions.total, 1, 'the Conduit session is listed')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${jake.token}` } })).statusCode, 204, 'Inkwell\'s logout-all')
  conduitError(t, await send(app, 'GET', '/user', jake), 401, 'Could not validate credentials', 'after logout-all: revoked at once')

  // An admin's deactivation ends Conduit sessions too; an inactive account cannot write.
  const jane = await register(t, app, 'jane')
  const admin = await loginAs(app, 'admin')
  const janeId = (await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${jane.token}` } })).json().id as number
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${janeId}`, headers: admin.auth, payload: { is_active: false } })).statusCode, 200)
  conduitError(t, await send(app, 'GET', '/user', jane), 401, 'Could not validate credentials', 'deactivated: the token is dead')
  await setActive(app, janeId, true)
  const again = (await send(app, 'POST', '/users/login', undefined, { user: { email: jane.email, password: PASSWORD } })).json().user.token as string
  await setActive(app, janeId, false)
  conduitError(t, await send(app, 'POST', '/articles', { ...jane, headers: { authorization: `Token ${again}` } }, { article: dragon }), 403, 'Inactive account', 'inactive: 403')
})

t.test('logins: Inkwell\'s throttle under a burst, and a second factor sends elsewhere', async (t) => {
  const app = await build(t, { LOGIN_FAILURE_LIMIT: '3' })
  const jake = await register(t, app, 'jake')
  const wrong = await Promise.all(Array.from({ length: 8 }, () =>
    send(app, 'POST', '/users/login', undefined, { user: { email: jake.email, password: 'not the password' } })))
  const statuses = wrong.map((r) => r.statusCode).sort()
  t.same(statuses, [401, 401, 401, 429, 429, 429, 429, 429], 'a burst of 8: 3 checked (401), the rest 429')
  conduitError(t, wrong.find((r) => r.statusCode === 429)!, 429, /Too many failed logins/, 'the 429')
  t.ok(wrong.find((r) => r.statusCode === 429)!.headers['retry-after'], 'with Retry-After')
  conduitError(t, await send(app, 'POST', '/users/login', undefined, { user: { email: jake.email, password: PASSWORD } }), 429, /Too many/, 'then even the right password')

  const mfa = await loginAs(app)
  await enableTotp(app, mfa)
  const res = await send(app, 'POST', '/users/login', undefined, { user: { email: mfa.email, password: PASSWORD } })
  conduitError(t, res, 403, /second factor: log in through POST \/auth\/token/, 'an account with TOTP')
  t.notMatch(res.body, /mfa_token/, 'no mfa_token handed to a client that cannot use it')
  conduitError(t, await send(app, 'POST', '/users/login', undefined, { user: { email: 'nobody@example.com', password: PASSWORD } }), 401, 'Incorrect username or password', 'an unknown account: the same 401')
})

t.test('PUT /api/user with a new e-mail: Inkwell\'s confirmed change', async (t) => {
  const { app, inbox } = await buildWithMail(t)
  const jake = await register(t, app, 'jake')
  const res = await send(app, 'PUT', '/user', jake, { user: { email: 'New@Example.com', username: 'jacob' } })
  t.equal(res.statusCode, 200)
  t.match(res.json().user, { email: 'jake@example.com', username: 'jacob' }, 'the old address until the link is followed')
  const mail = await waitForMail(inbox, 'new@example.com', (m) => /verify-email/.test(m.text ?? ''))
  t.equal((await app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token: linkOf(mail).token } })).statusCode, 204)
  t.equal((await send(app, 'GET', '/user', jake)).json().user.email, 'new@example.com', 'the link followed: the new address')
  const same = await send(app, 'PUT', '/user', jake, { user: { email: 'new@example.com' } })
  t.equal(same.statusCode, 200, 'the current address again: nothing to confirm')
  await app.settled()
  t.equal(inbox.mails.filter((m) => JSON.stringify(m.to).includes('new@example.com') && /verify-email/.test(m.text ?? '')).length, 1, 'no second link')
})
