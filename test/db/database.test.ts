// The Database each engine gives the domain (src/db/database.ts), the same cases on each: on SQLite, and
// with TEST_ENGINE=postgres on PostgreSQL. What differs between the engines stays behind this interface.
import { setTimeout as sleep } from 'node:timers/promises'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { createPost } from '../../src/domain/posts.js'
import { build, countRows, loginAs } from '../helper.js'
import { TEST_ENGINE } from '../support/services.js'

const now = () => new Date().toISOString()

t.test('a transaction commits what it wrote and returns what its work returned', async (t) => {
  const app = await build(t)
  const { db } = app
  const ada = await loginAs(app)
  const id = await db.transaction(async (tx) => {
    const [row] = await tx.q.insert(tx.t.posts).values({ authorId: ada.id, title: 'kept', content: 'x', slug: `tx-1-${Math.random()}`, createdAt: now(), updatedAt: now() }).returning({ id: tx.t.posts.id })
    return row!.id
  })
  t.equal(typeof id, 'number', 'the work\'s value comes back')
  t.equal(await countRows(app, db.t.posts, eq(db.t.posts.id, id)), 1, 'and the row is there for everyone')
})

t.test('a throw rolls the whole transaction back, nested ones included, and the error comes out as thrown', async (t) => {
  const app = await build(t)
  const { db } = app
  const ada = await loginAs(app)
  const oops = new Error('oops')
  await t.rejects(db.transaction(async (tx) => {
    await tx.q.insert(tx.t.posts).values({ authorId: ada.id, title: 'outer', content: 'x', slug: `tx-2-${Math.random()}`, createdAt: now(), updatedAt: now() })
    await tx.transaction(async (inner) => {
      await inner.q.insert(inner.t.posts).values({ authorId: ada.id, title: 'inner', content: 'x', slug: `tx-3-${Math.random()}`, createdAt: now(), updatedAt: now() })
    })
    throw oops
  }), oops, 'the same error')
  t.equal(await countRows(app, db.t.posts), 0, 'neither the outer nor the joined inner write is kept')
  t.equal(await countRows(app, db.t.users, eq(db.t.users.id, ada.id)), 1, 'what was there before stays')
})

t.test('unique and foreign-key violations are told apart, whatever the driver\'s codes', async (t) => {
  const app = await build(t)
  const { db } = app
  const [ada, bob] = [await loginAs(app), await loginAs(app)]
  const duplicate = await db.transaction((tx) => tx.q.update(tx.t.users).set({ email: ada.email }).where(eq(tx.t.users.id, bob.id)))
    .then(() => undefined, (err: unknown) => err)
  t.ok(db.isUniqueViolation(duplicate), 'an address that another row has: a unique violation')
  t.notOk(db.isForeignKeyViolation(duplicate), 'not a foreign-key one')
  t.notOk(db.isUnavailable(duplicate), 'nor the database being away')

  const orphan = await db.transaction((tx) => tx.q.insert(tx.t.likes).values({ userId: ada.id, postId: 2_000_000_000, createdAt: now() }))
    .then(() => undefined, (err: unknown) => err)
  t.ok(db.isForeignKeyViolation(orphan), 'a like of a post that does not exist: a foreign-key violation')
  t.notOk(db.isUniqueViolation(orphan), 'not a unique one')
  t.notOk(db.isUniqueViolation(new Error('duplicate key')) || db.isForeignKeyViolation(new Error('foreign key')), 'an error of another origin is neither')
})

t.test('rows come back with the domain\'s types on both engines: booleans, integers, text and null', async (t) => {
  const app = await build(t)
  const { db } = app
  const ada = await loginAs(app)
  const [row] = await db.q.select().from(db.t.users).where(eq(db.t.users.id, ada.id))
  t.same([typeof row?.id, typeof row?.isActive, typeof row?.emailVerified, typeof row?.mfaTotp, typeof row?.createdAt, row?.avatar],
    ['number', 'boolean', 'boolean', 'boolean', 'string', null], 'through drizzle')
  // preparedRows skips drizzle's mapping: the engine converts its own values (SQLite's 0/1 booleans).
  const read = db.preparedRows('test_row_types', (q, { users }) => q.select({ id: users.id, active: users.isActive, verified: users.emailVerified, avatar: users.avatar })
    .from(users).where(eq(users.id, ada.id)))
  t.same(await read({}), [[ada.id, true, false, null]], 'through preparedRows: the same types')
})

t.test('a lock makes transactions that take it run one after another', async (t) => {
  const app = await build(t)
  const { db } = app
  const order: string[] = []
  // The second starts once the first holds the lock (not after a guessed delay: a loaded machine can
  // take longer than any guess to open the first transaction), then has 150 ms to break in if it could.
  let firstHolds = () => {}
  const held = new Promise<void>((resolve) => { firstHolds = resolve })
  const first = db.transaction(async (tx) => {
    await tx.lock('test:lock')
    order.push('first holds')
    firstHolds()
    await sleep(150)
    order.push('first ends')
  })
  await held
  const second = db.transaction(async (tx) => {
    await tx.lock('test:lock')
    order.push('second holds')
  })
  await Promise.all([first, second])
  t.same(order, ['first holds', 'first ends', 'second holds'], 'the second waited for the first to end')
})

t.test('two transactions that would deadlock both commit: the one the database picks is run again', async (t) => {
  const app = await build(t)
  const { db } = app
  const [ada, bob] = [await loginAs(app), await loginAs(app)]
  const runs: string[] = []
  let arrived = 0
  /** Waits (a while at most) until both transactions hold their first row. */
  const bothHoldOne = async () => {
    arrived++
    for (let waited = 0; arrived < 2 && waited < 500; waited += 10) await sleep(10)
  }
  const crossing = (name: string, firstId: number, secondId: number) => db.transaction(async (tx) => {
    runs.push(name)
    await tx.q.update(tx.t.users).set({ bio: `${name} was here` }).where(eq(tx.t.users.id, firstId))
    await bothHoldOne()
    await tx.q.update(tx.t.users).set({ bio: `${name} was here` }).where(eq(tx.t.users.id, secondId))
  })
  await Promise.all([crossing('a', ada.id, bob.id), crossing('b', bob.id, ada.id)])
  const bios = (await db.q.select({ bio: db.t.users.bio }).from(db.t.users)).map((row) => row.bio)
  t.ok(bios.length === 2 && bios[0] === bios[1] && /^[ab] was here$/.test(bios[0] ?? ''), 'both committed; the one that ran last wrote both rows', { bios })
  if (TEST_ENGINE === 'postgres') {
    t.equal(runs.length, 3, `PostgreSQL broke the deadlock and the loser ran again (${runs.join(', ')})`)
  } else {
    t.same(runs, ['a', 'b'], 'SQLite runs transactions one at a time: no deadlock, no rerun')
  }
  await createPost(db, ada.id, { title: 'after', content: 'the connections are free again' })
  t.equal(await countRows(app, db.t.posts), 1, 'the pool (or the one connection) is usable afterwards')
})
