/**
 * LatestWriteQueue (lib/sessions/stores/file/latest-write.ts): the ordering rules, with a write
 * function whose completion the test controls. The store-level effects (last save wins, fewer
 * renames on disk) are in store-file.test.ts.
 */
import t from 'tap'
import { LatestWriteQueue } from '../lib/sessions/stores/file/latest-write'

interface Started { key: string, value: number, finish: () => void, fail: (err: Error) => void }

function harness (): { queue: LatestWriteQueue<number>, started: Started[] } {
  const started: Started[] = []
  const queue = new LatestWriteQueue<number>(async (key, value) => await new Promise<void>((resolve, reject) => {
    started.push({ key, value, finish: resolve, fail: reject })
  }))
  return { queue, started }
}

const settled = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

t.test('one write per key at a time; of the writes that waited only the newest runs, and all complete with it', async (t) => {
  const { queue, started } = harness()
  const done: number[] = []
  const submit = (v: number): Promise<void> => queue.submit('a', v).then(() => { done.push(v) })
  const all = [1, 2, 3, 4].map(submit)
  await settled()
  t.same(started.map((s) => s.value), [1], 'only the first write started')
  started[0].finish()
  await settled()
  t.same(done, [1], 'the first caller completes with its own write')
  t.same(started.map((s) => s.value), [1, 4], 'then only the newest waiting value is written')
  started[1].finish()
  await Promise.all(all)
  t.same(done.sort(), [1, 2, 3, 4], 'callers 2 and 3 completed with write 4')
  t.equal(queue.size, 0, 'nothing left behind for the key')
})

t.test('a caller never completes before a write issued no earlier than its own has landed', async (t) => {
  const { queue, started } = harness()
  const p1 = queue.submit('a', 1)
  await settled()
  let secondDone = false
  const p2 = queue.submit('a', 2).then(() => { secondDone = true })
  started[0].finish()
  await p1
  await settled()
  t.equal(secondDone, false, 'write 1 landing does not complete caller 2 (its write came later)')
  started[1].finish()
  await p2
  t.equal(secondDone, true)
})

t.test('keys are independent', async (t) => {
  const { queue, started } = harness()
  const pa = queue.submit('a', 1)
  const pb = queue.submit('b', 1)
  await settled()
  t.same(started.map((s) => s.key), ['a', 'b'], 'both keys write at once')
  started.forEach((s) => s.finish())
  await Promise.all([pa, pb])
  t.equal(queue.size, 0)
})

t.test('a failed write fails exactly its callers; the queue goes on', async (t) => {
  const { queue, started } = harness()
  const p1 = queue.submit('a', 1)
  const p2 = queue.submit('a', 2)
  const p3 = queue.submit('a', 3)
  await settled()
  started[0].fail(new Error('disk full'))
  await t.rejects(p1, /disk full/, 'the first caller sees its failure')
  await settled()
  started[1].fail(new Error('EIO'))
  await t.rejects(p2, /EIO/, 'callers 2 and 3 share the write that replaced theirs, and its failure')
  await t.rejects(p3, /EIO/)
  const p4 = queue.submit('a', 4)
  await settled()
  started[2].finish()
  await p4
  t.equal(started[2].value, 4, 'a later write runs normally after failures')
  t.equal(queue.size, 0)
})
