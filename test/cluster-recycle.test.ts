/**
 * max-requests: a worker that served its quota is recycled — replacement ready first, then the old
 * one drains — one worker at a time, without failing a request.
 */
import t from 'tap'
import { spawnServer, freePort, get, clusterFlags, CLI, APP, type LogLine } from './helpers/process'

const recycled = (l: LogLine): boolean => l.msg === 'worker replaced' && l.reason === 'recycle'

t.test('max-requests 20 with 2 workers: requests cause several recycles, one at a time, none failed', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2', '--max-requests', '20'])])
  await p.waitLine('all workers ready')

  // A steady trickle of requests until two recycles are complete: on a loaded machine a
  // replacement takes seconds to boot, so the count of requests it takes is not fixed — the
  // events are. Bounded: 2 workers × 20 requests make the first recycle due after ~40 requests.
  const statuses: number[] = []
  const pids = new Set<number>()
  while (p.lines.filter(recycled).length < 2 && statuses.length < 2000) {
    const r = await get(port, '/')
    statuses.push(r.status)
    pids.add(r.json.pid)
    await new Promise((resolve) => setTimeout(resolve, 40))
  }
  t.ok(statuses.length >= 40, `${statuses.length} requests sent`)
  t.equal(statuses.filter((s) => s === 200).length, statuses.length, `all ${statuses.length} requests answered 200`)

  const replaced = p.lines.filter(recycled)
  t.ok(replaced.length >= 2, `${replaced.length} workers recycled`)
  const requested = p.lines.filter((l) => l.msg === 'recycle requested (max-requests)')
  t.ok(requested.every((l) => (l.requests as number) >= 20), 'workers ask only once they served 20 requests')
  t.ok(pids.size >= 3, `${pids.size} different worker pids answered over the run (the first replacement served)`)

  // Replay the log: never two workers draining at once, and never one drained before its replacement was ready.
  const draining = new Set<unknown>()
  let most = 0
  for (const l of p.lines) {
    if (l.msg === 'worker draining') { draining.add(l.worker); most = Math.max(most, draining.size) }
    if (l.msg === 'worker exited') draining.delete(l.worker)
  }
  t.equal(most, 1, 'at most one worker draining at any time')
  for (const r of replaced) {
    const readyAt = p.lines.findIndex((l) => l.msg === 'worker ready' && l.worker === r.fresh)
    const drainAt = p.lines.findIndex((l) => l.msg === 'worker draining' && l.worker === r.old)
    t.ok(readyAt !== -1 && drainAt > readyAt, `old ${String(r.old)} drained after new ${String(r.fresh)} was ready`)
  }
  t.equal(p.lines.filter((l) => l.msg === 'worker exited' && l.action === 'respawn').length, 0, 'no crash involved')
})

// node:cluster's primary hands each new connection to a worker over IPC and re-routes it only when
// the worker answers "not accepted"; a worker that exited right after its drain, with such a
// hand-off still unread, left the client hanging forever (the primary keeps the socket). Seen
// here as ~0.4 hung requests per second of constant recycling before the drained/farewell
// exchange (worker.ts). Fresh connections from 40 clients at once, through many recycles.
t.test('constant recycling under 40 parallel clients on fresh connections: no request hangs', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2', '--max-requests', '5'])])
  await p.waitLine('all workers ready')
  const outcomes = new Map<string, number>()
  // Until three recycles have completed (events, not a fixed window: on a loaded machine a
  // replacement boots slowly), bounded at 60 s. A hung request fails its 3 s timeout.
  const until = Date.now() + 60_000
  const enough = (): boolean => p.lines.filter(recycled).length >= 3
  await Promise.all(Array.from({ length: 40 }, async () => {
    while (!enough() && Date.now() < until) {
      const outcome = await get(port, '/', false, 3000).then((r) => String(r.status), (err: Error) => err.message)
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
  }))
  const recycles = p.lines.filter(recycled).length
  t.ok(recycles >= 3, `${recycles} recycles during the run`)
  t.same([...outcomes.keys()], ['200'], `every request answered 200: ${JSON.stringify(Object.fromEntries(outcomes))}`)
})
