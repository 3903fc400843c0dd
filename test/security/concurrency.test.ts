import t from 'tap'
import { build, CREDENTIALS_401, login, loginAs, PASSWORD } from '../helper.js'

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

  const count = (sql: string) => (app.db.$client.prepare(sql).get() as { n: number }).n
  t.equal(count("SELECT count(*) AS n FROM users WHERE email = 'race@example.com'"), 1, 'one account holds the email')
  t.equal(count("SELECT count(*) AS n FROM users WHERE lower(username) = 'racer'"), 1, 'one account holds the username')
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
  const rows = (app.db.$client.prepare('SELECT count(*) AS n FROM likes WHERE post_id = ?').get(post.id) as { n: number }).n
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
  const orphans = (app.db.$client.prepare('SELECT count(*) AS n FROM likes WHERE post_id = ?').get(post.id) as { n: number }).n
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
  const admins = (app.db.$client.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin' AND is_active = 1").get() as { n: number }).n
  t.equal(admins, 1, 'exactly one active admin remains')
})
