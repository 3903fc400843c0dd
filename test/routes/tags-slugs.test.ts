import t from 'tap'
import type { App } from '../../src/app.js'
import { slugOf } from '../../src/domain/slugs.js'
import { normalizeTag, normalizeTags } from '../../src/domain/tags.js'
import { build, countRows, isError, loginAs, postNotFound, type TestUser } from '../helper.js'

const write = (app: App, user: TestUser, payload: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: '/posts', headers: user.auth, payload })
const change = (app: App, user: TestUser, id: number, payload: Record<string, unknown>) =>
  app.inject({ method: 'PATCH', url: `/posts/${id}`, headers: user.auth, payload })
const ids = (body: { items: { id: number }[] }) => body.items.map((p) => p.id)

t.test('slugs: made from the title, unique, following the title', async (t) => {
  t.equal(slugOf('How to Train Your Dragon'), 'how-to-train-your-dragon')
  t.equal(slugOf('  Ça   marche, déjà!  '), 'ca-marche-deja', 'accents dropped, punctuation and spaces one dash, none at the ends')
  t.equal(slugOf('!!!'), 'post', 'a title without letters or digits')
  t.equal(slugOf('日本語'), 'post', 'a script without Latin letters')
  const long = slugOf('word '.repeat(40))
  t.ok(long.length <= 80 && !long.endsWith('-') && long.startsWith('word-word'), `a long title is cut at a word (${long.length} characters)`)
  t.equal(slugOf('x'.repeat(100)).length, 80, 'one word longer than the limit is cut at 80')

  const app = await build(t)
  const ada = await loginAs(app)
  const first = (await write(app, ada, { title: 'Hello World', content: 'x' })).json()
  t.equal(first.slug, 'hello-world', 'the first post of a title gets its words')
  const second = (await write(app, ada, { title: 'hello, world!', content: 'y' })).json()
  t.equal(second.slug, `hello-world-${second.id}`, 'an equal title gets its id after the words')
  const third = (await write(app, ada, { title: 'Hello World', content: 'z' })).json()
  t.equal(third.slug, `hello-world-${third.id}`, 'and so does a third')
  // A title whose words are another post's slug with an id: the id is added again, then a random suffix.
  const tricky = (await write(app, ada, { title: `Hello World ${third.id}`, content: 'w' })).json()
  t.equal(tricky.slug, `hello-world-${third.id}-${tricky.id}`, 'words already taken by an id-suffixed slug get this post\'s id')

  const renamed = (await change(app, ada, first.id, { title: 'A new name' })).json()
  t.equal(renamed.slug, 'a-new-name', 'a new title gives a new slug')
  const freed = (await change(app, ada, second.id, { title: 'Hello World' })).json()
  t.equal(freed.slug, 'hello-world', 'the old words are free again for the next post that has them')
  const same = (await change(app, ada, freed.id, { title: 'Hello  World' })).json()
  t.equal(same.slug, 'hello-world', 'a title with the same words keeps its slug (its own does not count as taken)')
  const content = (await change(app, ada, freed.id, { content: 'only the content' })).json()
  t.equal(content.slug, 'hello-world', 'a change without a title keeps the slug')

  // Many posts of one title at once: every slug distinct (on PostgreSQL the loser of a race runs again).
  const burst = await Promise.all(Array.from({ length: 8 }, () => write(app, ada, { title: 'Burst', content: 'b' })))
  t.same(burst.map((r) => r.statusCode), Array(8).fill(201), 'all written')
  const slugs = burst.map((r) => r.json().slug as string)
  t.equal(new Set(slugs).size, 8, `all distinct: ${slugs.join(' ')}`)
  t.equal(slugs.filter((s) => s === 'burst').length, 1, 'one of them has the bare words')
})

t.test('descriptions and tags on a post', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const bob = await loginAs(app)

  const plain = (await write(app, ada, { title: 'Plain', content: 'x' })).json()
  t.match(plain, { description: '', tags: [] }, 'none given: an empty description and no tags')

  const res = await write(app, ada, { title: 'Tagged', content: 'x', description: 'Short', tags: ['  Dragons ', 'training', 'DRAGONS', 'node  js', 'Ünïcode'] })
  t.equal(res.statusCode, 201)
  const post = res.json()
  t.equal(post.description, 'Short')
  t.same(post.tags, ['dragons', 'training', 'node js', 'ünïcode'], 'normalised, each once, in the order first given')
  t.same((await app.inject({ url: `/posts/${post.id}` })).json().tags, post.tags, 'the same when read back')

  t.equal(normalizeTag('İstanbul'), 'i̇stanbul', 'lower case as Unicode says')

  const changed = (await change(app, ada, post.id, { tags: ['training', 'fire'], description: 'Longer now' })).json()
  t.same(changed.tags, ['training', 'fire'], 'PATCH tags replaces them all')
  t.equal(changed.description, 'Longer now')
  t.same((await change(app, ada, post.id, { title: 'Retitled' })).json().tags, ['training', 'fire'], 'a PATCH without tags keeps them')
  t.same((await change(app, ada, post.id, { tags: [] })).json().tags, [], '[] removes them')

  // Refused, and nothing changes.
  const before = (await app.inject({ url: `/posts/${plain.id}` })).json()
  const postsBefore = await countRows(app, app.db.t.posts)
  for (const [tags, message, what] of [
    [['a,b'], /tags\/0/, 'a comma'],
    [['   '], /tags\/0/, 'only white space'],
    [[''], /tags\/0/, 'empty'],
    [['x'.repeat(33)], /Invalid tag/, '33 characters once normalised'],
    [['ok', 'bell\u0007'], /Invalid tag/, 'a control character'],
    [Array.from({ length: 11 }, (_, i) => `t${i}`), /tags/, 'eleven tags'],
    [[1], /tags\/0/, 'not a string'],
    ['news', /tags/, 'not an array']
  ] as const) {
    isError(t, await write(app, ada, { title: 'Refused', content: 'x', tags }), 400, message, `create with ${what}`)
    isError(t, await change(app, ada, plain.id, { tags }), 400, message, `change with ${what}`)
  }
  t.throws(() => normalizeTags(Array.from({ length: 11 }, (_, i) => `t${i}`)), { code: 'TOO_MANY_TAGS', message: 'At most 10 different tags' },
    'the domain refuses eleven distinct tags whoever sends them')
  isError(t, await write(app, ada, { title: 'T', content: 'x', description: 'd'.repeat(301) }), 400, /description/, 'a description over 300 characters')
  isError(t, await write(app, ada, { title: 'T', content: 'x', description: 7 }), 400, /description/, 'a description that is not a string')
  t.equal(await countRows(app, app.db.t.posts), postsBefore, 'no post was written')
  t.same((await app.inject({ url: `/posts/${plain.id}` })).json(), before, 'the post is as it was')
  const ten = await write(app, ada, { title: 'Ten', content: 'x', tags: [...Array.from({ length: 8 }, (_, i) => `t${i}`), 'T0', ' t1 '] })
  t.same(ten.json().tags, Array.from({ length: 8 }, (_, i) => `t${i}`), 'ten tags of which two repeat others once normalised: eight kept')
  t.equal((await change(app, bob, post.id, { tags: ['mine'] })).statusCode, 403, 'tags are the author\'s to change')
  postNotFound(t, await change(app, ada, 999999, { tags: ['x'] }), 'tags of no post')
})

t.test('GET /posts filtered by author, tag and liked_by; GET /tags most used first', async (t) => {
  const app = await build(t)
  const ada = await loginAs(app)
  const bob = await loginAs(app)
  const make = async (user: TestUser, title: string, tags: string[]) => (await write(app, user, { title, content: 'x', tags })).json().id as number
  const a1 = await make(ada, 'a1', ['js', 'web'])
  const b1 = await make(bob, 'b1', ['js'])
  const a2 = await make(ada, 'a2', ['rust'])
  const b2 = await make(bob, 'b2', ['js', 'rust'])
  const a3 = await make(ada, 'a3', [])
  await app.inject({ method: 'PUT', url: `/posts/${b1}/like`, headers: ada.auth })
  await app.inject({ method: 'PUT', url: `/posts/${a2}/like`, headers: ada.auth })

  const list = async (query: string, user?: TestUser) => {
    const res = await app.inject({ url: `/posts?${query}`, headers: user?.auth ?? {} })
    t.equal(res.statusCode, 200, `?${query}: 200`)
    return res.json()
  }
  t.same(ids(await list('tag=js')), [b2, b1, a1], 'a tag\'s posts, newest first')
  t.equal((await list('tag=js')).total, 3, 'with their total')
  t.same(ids(await list('tag=%20JS%20')), [b2, b1, a1], 'the tag asked for is normalised as tags are')
  t.same(ids(await list(`author=${ada.id}`)), [a3, a2, a1], 'an author\'s posts')
  t.same(ids(await list(`liked_by=${ada.id}`)), [a2, b1], 'the posts a user likes')
  t.same(ids(await list(`author=${bob.id}&tag=rust`)), [b2], 'filters combine')
  t.equal((await list(`author=${bob.id}&tag=rust`)).total, 1)
  t.same(ids(await list(`tag=js&liked_by=${ada.id}`)), [b1])
  t.match(await list('tag=nobody-uses-this'), { items: [], total: 0, has_more: false, next_cursor: null }, 'an unknown tag: an empty page')
  t.match(await list('author=999999'), { items: [], total: 0 }, 'an unknown author: an empty page')
  t.match(await list('tag=js&skip=10'), { items: [], total: 3 }, 'past the end: no rows, the total still')
  t.match(await list('tag=rust&skip=10'), { items: [], total: 2 }, 'past the end of a tag alone: the tag\'s counter')

  // Cursors: each filtered list walks by its own, and a cursor of one list is refused by another.
  const first = await list('tag=js&limit=2')
  t.same(ids(first), [b2, b1])
  const rest = await list(`tag=js&limit=2&cursor=${first.next_cursor}`)
  t.same(ids(rest), [a1], 'the cursor continues the tag\'s list')
  isError(t, await app.inject({ url: `/posts?tag=rust&limit=2&cursor=${first.next_cursor}` }), 400, /cursor/, 'a cursor of another tag\'s list')
  isError(t, await app.inject({ url: `/posts?limit=2&cursor=${first.next_cursor}` }), 400, /cursor/, 'a cursor of a tag\'s list on all posts')

  for (const [query, what] of [
    ['author=0', 'author 0'], ['author=abc', 'author not a number'], ['liked_by=-1', 'liked_by negative'],
    ['tag=', 'an empty tag'], ['tag=a,b', 'a tag with a comma'], [`tag=${'x'.repeat(200)}`, 'a tag too long'],
    ['tag=a&tag=b', 'a repeated tag']
  ]) {
    t.equal((await app.inject({ url: `/posts?${query}` })).statusCode, 400, `${what}: 400`)
  }

  const tags = (await app.inject({ url: '/tags' })).json()
  t.same(tags.items, [{ name: 'js', post_count: 3 }, { name: 'rust', post_count: 2 }, { name: 'web', post_count: 1 }], 'most used first')
  t.match(tags, { total: 3, skip: 0, limit: 20, has_more: false })
  t.same((await app.inject({ url: '/tags?limit=1&skip=1' })).json().items, [{ name: 'rust', post_count: 2 }], 'paginated')
  await app.inject({ method: 'DELETE', url: `/posts/${a1}`, headers: ada.auth })
  await change(app, bob, b2, { tags: ['rust'] })
  t.same((await app.inject({ url: '/tags' })).json().items, [{ name: 'rust', post_count: 2 }, { name: 'js', post_count: 1 }],
    'counts follow deletes and changes; a tag no post carries leaves the list (ties by name)')
  await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth, payload: { password: 'a perfectly fine passphrase' } })
  t.same((await app.inject({ url: '/tags' })).json().items, [{ name: 'rust', post_count: 1 }], 'a deleted user\'s posts leave the counts (cascade)')
  t.equal((await app.inject({ url: '/tags?limit=0' })).statusCode, 400, 'limit 0: 400')
})
