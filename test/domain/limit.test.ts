import t from 'tap'
import { concurrencyLimit } from '../../src/domain/limit.js'

t.test('a concurrency limit runs at most its slots at once, the rest in the order they asked', async (t) => {
  const limited = concurrencyLimit(1)
  let running = 0
  let most = 0
  const order: string[] = []
  const job = (name: string, gate: Promise<void> = Promise.resolve()) => limited(async () => {
    running++
    most = Math.max(most, running)
    order.push(name)
    await gate
    running--
  })

  let open!: () => void
  const first = job('first', new Promise<void>((resolve) => { open = resolve }))
  const second = job('second')
  // Asks as the first job's slot is freed, while the second is still waiting for it.
  const third = first.then(() => job('third'))
  open()
  await Promise.all([first, second, third])
  t.equal(most, 1, 'never two at once')
  t.same(order, ['first', 'second', 'third'], 'in the order they asked')
})

t.test('a failing job frees its slot', async (t) => {
  const limited = concurrencyLimit(1)
  await t.rejects(limited(async () => { throw new Error('boom') }))
  t.equal(await limited(async () => 'after'), 'after')
})

t.test('a concurrency limit tells how many run and how many wait', async (t) => {
  const limited = concurrencyLimit(2)
  t.same(limited.load(), { running: 0, waiting: 0 }, 'idle')
  const gates: Array<() => void> = []
  const job = () => limited(() => new Promise<void>((resolve) => gates.push(resolve)))
  const jobs = [job(), job(), job(), job(), job()]
  await new Promise((resolve) => setImmediate(resolve))
  t.same(limited.load(), { running: 2, waiting: 3 }, 'two in their slots, three waiting')
  gates.shift()!()
  await new Promise((resolve) => setImmediate(resolve))
  t.same(limited.load(), { running: 2, waiting: 2 }, 'a waiter took the freed slot')
  while (gates.length > 0) {
    gates.shift()!()
    await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(jobs)
  t.same(limited.load(), { running: 0, waiting: 0 }, 'idle again')
})
