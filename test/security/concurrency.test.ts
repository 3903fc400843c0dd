import { and, eq, sql } from 'drizzle-orm'
import t from 'tap'
import { build, countRows, CREDENTIALS_401, login, loginAs, PASSWORD } from '../helper.js'

const statuses = (responses: Array<{ statusCode: number }>) => responses.map((r) => r.statusCode).sort()

t.test('parallel registrations of one email or one username make exactly one account', async (t) => {
  const app = await build(t)
  const sameEmail = await Promise.all(Array.from({ length: 10 }, (_, i) => app.inject({
    method: 'POST', url: '/auth/register',
    payload: { email: i % 2 === 0 ? 'race@example.com' : 'RACE@example.com', username: `racer_${i}`, password: PASSWORD }
  })))
  t.same(statuses(sameEmail), [201, 409, 409, 409, 409, 409, 409, 409, 409, 409], 'one 201, nine 409, no 500')
  for (const res of sameEmail.filter((r) => r.statusCode === 409)) {
    t.match(res.json(), { statusCode: 409, error: 'Conflict', message: 'Email already registered' }, 'a 409 that names the email')
  }

  const sameName = await Promise.all(Array.from({ length: 10 }, (_, i) => app.inject({
    method: 'POST', url: '/auth/register',
    payload: { email: `name${i}@example.com`, username: ['Racer', 'racer', 'RACER'][i % 3], password: PASSWORD }
  })))
  t.same(statuses(sameName), [201, 409, 409, 409, 409, 409, 409, 409, 409, 409], 'usernames too, regardless of case')

  const { users } = app.db.t
  t.equal(await countRows(app, users, eq(users.email, 'race@example.com')), 1, 'one account holds the email')
  t.equal(await countRows(app, users, sql`lower(${users.username}) = 'racer'`), 1, 'one account holds the username')
})

t.test('ten parallel uses of one refresh token: exactly one succeeds, and the race ends the session', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const uses = await Promise.all(Array.from({ length: 10 }, () => app.inject({
    method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.refresh }
  })))
  t.same(statuses(uses), [200, 401, 401, 401, 401, 401, 401, 401, 401, 401], 'one 200, nine 401, no 500')
  for (const res of uses.filter((r) => r.statusCode === 401)) t.same(res.json(), CREDENTIALS_401, 'the one 401')

  // The nine later uses are a spent token presented again: indistinguishable from theft, so the session ends,
  // and the pair the winner received dies with it. The user logs in again.
  const winner = uses.find((r) => r.statusCode === 200)!.json()
  const again = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: winner.refresh_token } })
  t.equal(again.statusCode, 401, 'the winner\'s refresh token died with the session')
  const me = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${winner.access_token}` } })
  t.equal(me.statusCode, 401, 'and so did its access token')
  const fresh = await login(app, user.username)
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${fresh.access}` } })).statusCode, 200, 'a new login works')
})

t.test('many simultaneous likes and unlikes never fail and leave a consistent count', async (t) => {
  const app = await build(t)
  const author = await loginAs(app)
  const fans = await Promise.all(Array.from({ length: 8 }, () => loginAs(app)))
  const post = (await app.inject({ method: 'POST', url: '/posts', headers: author.auth, payload: { title: 'Hot', content: 'Take' } })).json()
  const like = (fan: { auth: { authorization: string } }, method: 'PUT' | 'DELETE') => app.inject({ method, url: `/posts/${post.id}/like`, headers: fan.auth })

  const storm = await Promise.all(fans.flatMap((fan, i) => Array.from({ length: 12 }, (_, j) => like(fan, (i + j) % 3 === 0 ? 'DELETE' : 'PUT'))))
  t.same([...new Set(statuses(storm))], [204], `${storm.length} likes and unlikes at once: every one a 204`)
  const rows = await countRows(app, app.db.t.likes, eq(app.db.t.likes.postId, post.id))
  t.equal((await app.inject({ url: `/posts/${post.id}` })).json().like_count, rows, 'like_count matches the rows')

  await Promise.all(fans.flatMap((fan) => [like(fan, 'PUT'), like(fan, 'PUT')]))
  t.equal((await app.inject({ url: `/posts/${post.id}` })).json().like_count, fans.length, 'everyone likes it twice at once: counted once each')
  await Promise.all(fans.flatMap((fan) => [like(fan, 'DELETE'), like(fan, 'DELETE')]))
  t.equal((await app.inject({ url: `/posts/${post.id}` })).json().like_count, 0, 'everyone unlikes it twice at once: zero')

  const race = await Promise.all([
    ...fans.map((fan) => like(fan, 'PUT')),
    app.inject({ method: 'DELETE', url: `/posts/${post.id}`, headers: author.auth }),
    ...fans.map((fan) => like(fan, 'DELETE'))
  ])
  t.ok(race.every((r) => r.statusCode === 204 || r.statusCode === 404), 'likes racing the post\'s deletion: 204 or 404, never 500')
  const orphans = await countRows(app, app.db.t.likes, eq(app.db.t.likes.postId, post.id))
  t.equal(orphans, 0, 'no like outlives its post')
})

t.test('racing writes on unique and guarded data never 500', async (t) => {
  const app = await build(t)
  const [a, b] = await Promise.all([loginAs(app), loginAs(app)])
  const rename = await Promise.all([a, b].map((u) => app.inject({ method: 'PATCH', url: '/users/me', headers: u.auth, payload: { username: 'taken_now' } })))
  t.same(statuses(rename), [200, 409], 'two users take one username at once: one 200, one 409')

  const [x, y] = await Promise.all([loginAs(app, 'admin'), loginAs(app, 'admin')])
  const demote = await Promise.all([
    app.inject({ method: 'PATCH', url: `/admin/users/${y.id}`, headers: x.auth, payload: { role: 'user' } }),
    app.inject({ method: 'PATCH', url: `/admin/users/${x.id}`, headers: y.auth, payload: { role: 'user' } })
  ])
  t.ok(demote.every((r) => r.statusCode < 500), `two admins demote each other at once: ${statuses(demote).join(', ')}`)
  const { users } = app.db.t
  const admins = await countRows(app, users, and(eq(users.role, 'admin'), eq(users.isActive, true)))
  t.equal(admins, 1, 'exactly one active admin remains')
})

t.test('logins racing a password change: no session they start survives the change', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const NEW = 'a brand new passphrase 77'
  const logins = Array.from({ length: 24 }, () => app.inject({
    method: 'POST', url: '/auth/token', payload: { username: user.username, password: PASSWORD }
  }))
  // Start the change while the logins are still verifying the old password (argon2 runs two at a time).
  await new Promise((resolve) => setTimeout(resolve, 40))
  const change = await app.inject({
    method: 'PUT', url: '/users/me/password', headers: user.auth, payload: { current_password: PASSWORD, new_password: NEW }
  })
  t.equal(change.statusCode, 200, 'the change succeeds')
  const results = await Promise.all(logins)
  t.ok(results.every((r) => r.statusCode === 200 || r.statusCode === 401), `every login is a 200 or a 401: ${statuses(results).join(',')}`)
  let live = 0
  for (const res of results.filter((r) => r.statusCode === 200)) {
    const { access_token: access, refresh_token: refresh } = res.json()
    if ((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${access}` } })).statusCode !== 401) live++
    if ((await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: refresh } })).statusCode !== 401) live++
  }
  t.equal(live, 0, 'no token from a login that verified the old password works after the change')
  const { access_token: fresh } = change.json()
  t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${fresh}` } })).statusCode, 200, 'the change\'s own pair works')
  t.equal((await app.inject({ method: 'POST', url: '/auth/token', payload: { username: user.username, password: NEW } })).statusCode, 200, 'the new password logs in')
})

t.test('logins racing the account\'s deletion answer 200 or 401, never 500, and leave no session', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const logins = Array.from({ length: 24 }, () => app.inject({
    method: 'POST', url: '/auth/token', payload: { username: user.username, password: PASSWORD }
  }))
  await new Promise((resolve) => setTimeout(resolve, 40))
  const deletion = await app.inject({ method: 'DELETE', url: '/users/me', headers: user.auth, payload: { password: PASSWORD } })
  t.equal(deletion.statusCode, 204, 'the deletion succeeds')
  const results = await Promise.all(logins)
  t.ok(results.every((r) => r.statusCode === 200 || r.statusCode === 401), `every login is a 200 or a 401: ${statuses(results).join(',')}`)
  for (const res of results.filter((r) => r.statusCode === 200)) {
    t.equal((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${res.json().access_token}` } })).statusCode, 401, 'a token from before the deletion is dead')
  }
  t.equal(await countRows(app, app.db.t.sessions, eq(app.db.t.sessions.userId, user.id)), 0, 'no session row of the user is left')
})
