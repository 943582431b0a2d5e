/**
 * Stopping: SIGTERM to the primary or Ctrl-C to the whole process group drains the workers —
 * requests in flight finish, the process exits 0 — and stragglers are killed at graceful-timeout.
 */
import t from 'tap'
import { spawnServer, freePort, get, clusterFlags, CLI, APP, type LogLine } from './helpers/process'

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

for (const how of ['SIGTERM to the primary', 'Ctrl-C (SIGINT to the process group)'] as const) {
  t.test(`${how}: a 1 s request in flight still gets its 200, then exit 0`, async (t) => {
    const port = await freePort()
    const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2'])])
    await p.waitLine('all workers ready')
    const inFlight = [get(port, '/slow?ms=1000'), get(port, '/slow?ms=1000')]
    await wait(200)
    const signalledAt = Date.now()
    if (how === 'SIGTERM to the primary') p.signal('SIGTERM')
    else p.signalGroup('SIGINT')
    const replies = await Promise.all(inFlight)
    t.same(replies.map((r) => r.status), [200, 200], 'both in-flight requests answered')
    t.same(replies.map((r) => r.json.slow), [true, true])
    const exit = await p.waitExit(10_000)
    const tookMs = Date.now() - signalledAt
    t.equal(exit.code, 0, 'primary exits 0')
    t.ok(tookMs < 3000, `stopped ${tookMs} ms after the signal (the requests needed ~800 ms)`)
    const exits = p.lines.filter((l: LogLine) => l.msg === 'worker exited')
    t.equal(exits.length, 2)
    t.ok(exits.every((l) => l.code === 0 && l.reason === 'stop'), 'workers drained and exited 0 (they ignored the signal and followed the primary)')
    t.equal(p.lines.filter((l) => l.msg === 'worker started').length, 2, 'nothing was respawned while stopping')
    await t.rejects(get(port, '/'), 'the port is closed')
  })
}

t.test('a request longer than graceful-timeout does not hold the shutdown', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2'])])
  await p.waitLine('all workers ready')
  const straggler = get(port, '/slow?ms=30000').catch((err: Error) => err)
  await wait(200)
  const signalledAt = Date.now()
  p.signal('SIGTERM')
  const exit = await p.waitExit(15_000)
  const tookMs = Date.now() - signalledAt
  t.equal(exit.code, 0)
  t.ok(tookMs >= 2500 && tookMs < 6500, `stopped after graceful-timeout 3 s (+ kill margin): ${tookMs} ms`)
  t.type(await straggler, Error, 'the straggler was cut off')
})
