/**
 * Stopping: SIGTERM to the primary or Ctrl-C to the whole process group drains the workers —
 * requests in flight finish, the process exits 0 — and stragglers are killed at graceful-timeout.
 */
import t from 'tap'
import { spawnServer, freePort, get, clusterFlags, CLI, APP, type LogLine } from './helpers/process'

for (const how of ['SIGTERM to the primary', 'Ctrl-C (SIGINT to the process group)'] as const) {
  t.test(`${how}: a 1 s request in flight still gets its 200, then exit 0`, async (t) => {
    const port = await freePort()
    // A graceful-timeout far above what the requests need: a drain that waited for it instead of
    // for the requests would show, however slow the machine. -l info: the app logs each request
    // as it arrives, so the signal is sent once both are in flight (not after a guessed delay).
    const gracefulMs = 20_000
    const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2', '--graceful-timeout', `${gracefulMs}ms`, '-l', 'info'])])
    await p.waitLine('all workers ready')
    const inFlight = [get(port, '/slow?ms=1000'), get(port, '/slow?ms=1000')]
    await p.waitLines((l) => l.msg === 'incoming request' && (l.req as { url?: string })?.url === '/slow?ms=1000', 2)
    const signalledAt = Date.now()
    if (how === 'SIGTERM to the primary') p.signal('SIGTERM')
    else p.signalGroup('SIGINT')
    const replies = await Promise.all(inFlight)
    t.same(replies.map((r) => r.status), [200, 200], 'both in-flight requests answered')
    t.same(replies.map((r) => r.json.slow), [true, true])
    const exit = await p.waitExit(gracefulMs + 10_000)
    const tookMs = Date.now() - signalledAt
    t.equal(exit.code, 0, 'primary exits 0')
    t.ok(tookMs < gracefulMs, `stopped ${tookMs} ms after the signal: when the requests were done, not at graceful-timeout (${gracefulMs} ms)`)
    t.notOk(p.lines.some((l) => l.msg === 'drain took too long: killing worker'), 'no worker was killed')
    const exits = p.lines.filter((l: LogLine) => l.msg === 'worker exited')
    t.equal(exits.length, 2)
    t.ok(exits.every((l) => l.code === 0 && l.reason === 'stop'), 'workers drained and exited 0 (they ignored the signal and followed the primary)')
    t.equal(p.lines.filter((l) => l.msg === 'worker started').length, 2, 'nothing was respawned while stopping')
    await t.rejects(get(port, '/'), 'the port is closed')
  })
}

t.test('a request longer than graceful-timeout does not hold the shutdown', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2', '-l', 'info'])])
  await p.waitLine('all workers ready')
  const straggler = get(port, '/slow?ms=30000', false, 60_000).catch((err: Error) => err)
  await p.waitLine((l) => l.msg === 'incoming request' && (l.req as { url?: string })?.url === '/slow?ms=30000')
  const signalledAt = Date.now()
  p.signal('SIGTERM')
  const exit = await p.waitExit(25_000)
  const tookMs = Date.now() - signalledAt
  t.equal(exit.code, 0)
  // Not before graceful-timeout (3 s, timers may fire a little early), and not when the 30 s
  // straggler would have ended: the straggler itself is cut off.
  t.ok(tookMs >= 2900 && tookMs < 25_000, `stopped after graceful-timeout 3 s (+ kill margin), not after the straggler's 30 s: ${tookMs} ms`)
  t.type(await straggler, Error, 'the straggler was cut off')
})
