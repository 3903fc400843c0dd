// The posts counter (drizzle/0003_posts_total_counter.sql) that answers GET /posts's `total`:
// it must equal count(*) after every kind of change, cascades included.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { sql } from 'drizzle-orm'
import { createPost, deletePost } from '../../src/domain/posts.js'
import { migrationsRoot } from '../../src/paths.js'
import { build, countRows, loginAs, PASSWORD, sqlRows, sqlRun, type TestUser } from '../helper.js'

const counter = async (app: App) =>
  Number((await sqlRows<{ n: number }>(app, sql`select n from row_counts where name = 'posts'`))[0]?.n)
const counted = (app: App) => countRows(app, app.db.t.posts)

/** The counter, count(*) and the API's `total` agree, and equal `expected`. */
async function agree (t: Test, app: App, expected: number, what: string) {
  const total = (await app.inject({ url: '/posts?limit=1' })).json().total
  t.same({ counter: await counter(app), counted: await counted(app), total }, { counter: expected, counted: expected, total: expected }, what)
}

const create = (app: App, user: TestUser, title: string) =>
  app.inject({ method: 'POST', url: '/posts', headers: user.auth, payload: { title, content: 'some words' } })

t.test('the counter follows creates and deletes, through the API and the domain module', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  await agree(t, app, 0, 'empty')
  for (let i = 0; i < 5; i++) t.equal((await create(app, alice, `post ${i}`)).statusCode, 201)
  await agree(t, app, 5, 'five posts over HTTP')
  const id = await createPost(app.db, alice.id, { title: 'direct', content: 'direct' })
  await agree(t, app, 6, 'one more through the module')
  t.equal((await app.inject({ method: 'DELETE', url: `/posts/${id}`, headers: alice.auth })).statusCode, 204)
  await agree(t, app, 5, 'one deleted over HTTP')
  await deletePost(app.db, id)
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

  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth, payload: { password: PASSWORD } })).statusCode, 204)
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
  await createPost(app.db, alice.id, { title: 'kept', content: 'kept' })
  await t.rejects(app.db.transaction(async (tx) => {
    await createPost(tx, alice.id, { title: 'rolled back', content: 'rolled back' })
    throw new Error('abort')
  }), /abort/)
  await agree(t, app, 1, 'after the rollback')
})

t.test('the migration backfills the counter from the posts already there', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  for (let i = 0; i < 7; i++) await createPost(app.db, alice.id, { title: `${i}`, content: `${i}` })
  // Back to the state before the migration, with posts in the table, then apply its SQL again.
  const [undo, file] = app.db.engine === 'postgres'
    ? ['drop function posts_count() cascade; drop function likes_count() cascade; delete from row_counts', 'postgres/0001_counters.sql']
    : ['drop trigger posts_count_insert; drop trigger posts_count_delete; drop table row_counts', 'sqlite/0003_posts_total_counter.sql']
  const migration = readFileSync(join(migrationsRoot, file), 'utf8')
  await app.db.transaction(async (tx) => {
    for (const statement of [...undo.split(';'), ...migration.split('--> statement-breakpoint')]) {
      await sqlRun(app, sql.raw(statement))
    }
    return tx
  })
  await agree(t, app, 7, 'backfilled')
  await createPost(app.db, alice.id, { title: 'after', content: 'after' })
  await agree(t, app, 8, 'and kept from then on')
})
