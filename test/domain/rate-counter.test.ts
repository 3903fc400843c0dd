import t from 'tap'
import { MemoryRateCounter } from '../../src/domain/rate-counter.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('N events are allowed in the window, the next is refused and not counted', async (t) => {
  const counter = new MemoryRateCounter(3, 1000)
  const at = 1_000_000
  t.same([await counter.take('ada', at), await counter.take('ada', at + 1), await counter.take('ada', at + 2)], [true, true, true], 'three allowed')
  t.equal(await counter.take('ada', at + 3), false, 'the fourth refused')
  t.equal(await counter.take('ada', at + 999), false, 'still refused while the first counts')
  // Refused events were not counted: once the first leaves, one more is allowed, not zero.
  t.equal(await counter.take('ada', at + 1000), true, 'the first has left the window (it counts while younger than the window)')
  t.equal(await counter.take('ada', at + 1000), false, 'and only one slot came free')
  t.equal(await counter.take('ada', at + 1001), true, 'the second leaves a millisecond later')
})

t.test('the window slides: events leave it one by one (real clock)', async (t) => {
  const counter = new MemoryRateCounter(2, 300)
  t.ok(await counter.take('k'), 'first')
  await sleep(150)
  t.ok(await counter.take('k'), 'second')
  t.notOk(await counter.take('k'), 'third refused')
  await sleep(170) // the first is now older than the window, the second is not
  t.ok(await counter.take('k'), 'allowed again when the first left')
  t.notOk(await counter.take('k'), 'but the second and third still count')
  await sleep(320)
  t.ok(await counter.take('k'), 'everything left: allowed')
  t.ok(await counter.take('k'), 'twice')
})

t.test('keys are counted apart, exactly as given', async (t) => {
  const counter = new MemoryRateCounter(1, 60_000)
  t.ok(await counter.take('user:1'))
  t.notOk(await counter.take('user:1'))
  t.ok(await counter.take('user:2'), 'another key')
  t.ok(await counter.take('USER:1'), 'keys are not case-folded: the caller chooses the key')
})

t.test('concurrent takes never let more than the limit through', async (t) => {
  const counter = new MemoryRateCounter(3, 60_000)
  const results = await Promise.all(Array.from({ length: 40 }, () => counter.take('k')))
  t.equal(results.filter(Boolean).length, 3)
})

t.test('memory stays bounded under a spray of distinct keys; expired keys go first', async (t) => {
  const counter = new MemoryRateCounter(2, 1000, 100)
  const at = 5_000_000
  await counter.take('old', at)
  await counter.take('old', at)
  for (let i = 0; i < 1000; i++) await counter.take(`spray-${i}`, at + 2000)
  t.ok(counter.size <= 100, `at most maxKeys held (${counter.size})`)
  for (let i = 0; i < 200; i++) await counter.take(`other-${i}`, at + 2000 + i)
  t.ok(counter.size <= 100, 'still bounded')
  const fresh = new MemoryRateCounter(2, 1000, 3)
  await fresh.take('a', at)
  await fresh.take('b', at)
  await fresh.take('live', at + 1500)
  await fresh.take('c', at + 1600)
  t.equal(fresh.size, 2, 'the expired keys were swept, not the live one')
  t.equal(await fresh.take('live', at + 1600), true)
  t.equal(await fresh.take('live', at + 1600), false, 'the live key kept its count')
})

t.test('a limit or window that is not a positive integer is refused', async (t) => {
  for (const [limit, windowMs] of [[0, 1000], [1.5, 1000], [3, 0], [3, Number.POSITIVE_INFINITY], [Number.NaN, 1]]) {
    t.throws(() => new MemoryRateCounter(limit as number, windowMs as number), RangeError, `${limit}, ${windowMs}`)
  }
  t.throws(() => new MemoryRateCounter(1, 1, 0), RangeError, 'maxKeys too')
})
