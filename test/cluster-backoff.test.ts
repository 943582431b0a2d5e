/**
 * Crash-restart delays: doubling from 100 ms, capped at 10 s, back to 100 ms once a worker has
 * stayed up 30 s (the process-level behaviour is in cluster-supervise.test.ts).
 */
import t from 'tap'
import { RestartBackoff } from '../lib/cluster/backoff'
import { withHeapLimit } from '../lib/cluster/primary'

t.test('a crash loop slows down to the cap; a stable worker resets it', async (t) => {
  const b = new RestartBackoff()
  const quick = Array.from({ length: 9 }, () => b.next(50))
  t.same(quick, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000], 'fast crashes: doubling, capped at 10 s')
  t.equal(b.next(30_000), 100, 'a worker that stayed up 30 s crashes: back to 100 ms')
  t.equal(b.next(10), 200)
})

t.test('workers get one --max-old-space-size, ours, whatever the primary was started with', async (t) => {
  t.same(withHeapLimit(['--inspect=0', '--max-old-space-size=4096'], 150), ['--inspect=0', '--max-old-space-size=150'])
  t.same(withHeapLimit(['--max_old_space_size', '4096', '--trace-warnings'], 96), ['--trace-warnings', '--max-old-space-size=96'])
  t.same(withHeapLimit([], 0), [], 'no heap cap when the plan has none')
})
