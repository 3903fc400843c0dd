// The posts counter (drizzle/0003_posts_total_counter.sql) that answers GET /posts's `total`:
// it must equal count(*) after every kind of change, cascades included.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { App } from '../src/app.js'
import { createPost, deletePost } from '../src/posts.js'
import { migrationsFolder } from '../src/paths.js'
import { build, loginAs, type TestUser } from './helper.js'

const counter = (app: App) =>
  (app.db.$client.prepare('select n from row_counts where name = \'posts\'').get() as { n: number }).n
const counted = (app: App) =>
  (app.db.$client.prepare('select count(*) as n from posts').get() as { n: number }).n

/** The counter, count(*) and the API's `total` agree, and equal `expected`. */
async function agree (t: Test, app: App, expected: number, what: string) {
  const total = (await app.inject({ url: '/posts?limit=1' })).json().total
  t.same({ counter: counter(app), counted: counted(app), total }, { counter: expected, counted: expected, total: expected }, what)
}

const create = (app: App, user: TestUser, title: string) =>
  app.inject({ method: 'POST', url: '/posts', headers: user.auth, payload: { title, content: 'some words' } })

t.test('the counter follows creates and deletes, through the API and the domain module', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  await agree(t, app, 0, 'empty')
  for (let i = 0; i < 5; i++) t.equal((await create(app, alice, `post ${i}`)).statusCode, 201)
  await agree(t, app, 5, 'five posts over HTTP')
  const id = createPost(app.db, alice.id, { title: 'direct', content: 'direct' })
  await agree(t, app, 6, 'one more through the module')
  t.equal((await app.inject({ method: 'DELETE', url: `/posts/${id}`, headers: alice.auth })).statusCode, 204)
  await agree(t, app, 5, 'one deleted over HTTP')
  deletePost(app.db, id)
  await agree(t, app, 5, 'deleting a missing post changes nothing')
  t.equal((await app.inject({ method: 'PATCH', url: '/posts/1', headers: alice.auth, payload: { title: 'edited' } })).statusCode, 200)
  await agree(t, app, 5, 'an edit changes nothing')
  t.equal((await app.inject({ method: 'DELETE', url: '/posts/999999', headers: alice.auth })).statusCode, 404)
  await agree(t, app, 5, 'a 404 delete changes nothing')
})

t.test('the counter follows the cascade when a user is deleted, by themselves or by an admin', async (t) => {
  const app = await build(t)
  const admin = await loginAs(app, 'admin')
  const alice = await loginAs(app)
  const bob = await loginAs(app)
  const carol = await loginAs(app)
  for (const [user, n] of [[alice, 3], [bob, 4], [carol, 2]] as const) {
    for (let i = 0; i < n; i++) t.equal((await create(app, user, `${user.username} ${i}`)).statusCode, 201)
  }
  await agree(t, app, 9, 'nine posts')

  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth })).statusCode, 204)
  await agree(t, app, 5, 'bob deleted his account: his four posts went with it')

  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${alice.id}`, headers: admin.auth })).statusCode, 204)
  await agree(t, app, 2, 'an admin deleted alice: her three posts went with her')

  const page = (await app.inject({ url: '/posts' })).json()
  t.equal(page.items.length, 2, 'the page shows what is left')
  t.equal(page.has_more, false, 'has_more follows the counter')
})

t.test('a transaction that rolls back leaves the counter as it was', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  createPost(app.db, alice.id, { title: 'kept', content: 'kept' })
  t.throws(() => app.db.transaction(() => {
    createPost(app.db, alice.id, { title: 'rolled back', content: 'rolled back' })
    throw new Error('abort')
  }), /abort/)
  await agree(t, app, 1, 'after the rollback')
})

t.test('the migration backfills the counter from the posts already there', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  for (let i = 0; i < 7; i++) createPost(app.db, alice.id, { title: `${i}`, content: `${i}` })
  // Back to the state before the migration, with posts in the table, then apply its SQL again.
  const sqlite = app.db.$client
  sqlite.exec('drop trigger posts_count_insert; drop trigger posts_count_delete; drop table row_counts')
  const migration = readFileSync(join(migrationsFolder, '0003_posts_total_counter.sql'), 'utf8')
  sqlite.transaction(() => {
    for (const statement of migration.split('--> statement-breakpoint')) sqlite.exec(statement)
  })()
  await agree(t, app, 7, 'backfilled')
  createPost(app.db, alice.id, { title: 'after', content: 'after' })
  await agree(t, app, 8, 'and kept from then on')
})
