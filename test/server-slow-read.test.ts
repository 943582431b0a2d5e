/**
 * Slow read (real slowhttptest -X, the canonical settings: tiny receive windows, a few bytes read
 * every few seconds, 3 pipelined requests per connection) on a 1 MB route: the bytes held for slow
 * readers stay under the send budget (25 MB), so a worker stays inside its memory budget and a
 * single process within a few hundred MB — before, a single process grew past a gigabyte within
 * seconds and workers outgrew their budget. RSS is read from /proc.
 */
import t from 'tap'
import { ATTACK_APP, PRODSERVER } from './helpers/attack-scenario'
import { freePort, get, spawnServer } from './helpers/process'
import { readdirSync, readlinkSync } from 'node:fs'
import { childPids, rssMb, startSlowHttpTest, watchRss } from './helpers/slowhttptest'

/** How long the attack runs: long enough for the old code to pass 1 GB in one process. */
const ATTACK_S = 8
/** worker-memory-mb's default: the memory budget of one process; its send budget is an eighth. */
const WORKER_MEMORY_MB = 200
const SEND_BUDGET_MB = 25

for (const cluster of [false, true]) {
  t.test(`slow read on a 1 MB route, ${cluster ? '2 workers' : 'single process'}: every process stays within a few hundred MB`, async (t) => {
    const port = await freePort()
    const server = spawnServer(t, [PRODSERVER, 'serve', ATTACK_APP, '--host', '127.0.0.1', '--port', String(port), ...(cluster ? ['--workers', '2'] : [])])
    await server.waitLine(cluster ? 'all workers ready' : 'listening', 30_000)
    const servers = (): number[] => cluster ? childPids(server.pid) : [server.pid]
    // Warm the route up with a fast client: the baseline is the process serving it normally.
    for (let i = 0; i < 6; i++) t.equal((await get(port, '/big')).status, 200)
    const baseline = Math.max(...servers().map((pid) => rssMb(pid) ?? 0))

    const rss = watchRss(servers)
    const attack = startSlowHttpTest(t, {
      mode: 'slow-read',
      url: `http://127.0.0.1:${port}/big`,
      connections: 1000,
      rate: 200,
      seconds: ATTACK_S,
      window: [512, 1024],
      readBytes: 32,
      readEverySeconds: 5,
      pipelined: 3
    })
    const report = await attack.finished
    const peaks = rss.stop()
    const peak = Math.max(...peaks.values())
    t.ok(report.samples.some((s) => s.connected >= 100), `the attack held its connections (${JSON.stringify(report.samples.at(-2))})`)
    const budgetLine = server.lines.find((l) => /over the send budget/.test(l.msg ?? ''))
    t.ok(budgetLine, `the send budget was reached and enforced: ${String(budgetLine?.msg)}`)
    // A worker stays inside the memory it was sized for (worker-memory-mb: a heap capped at 75% of
    // it, Node itself in the rest) plus at most its send budget, the one part a client can grow.
    // The single process has no heap cap, so the app's garbage (a 1 MB string per response) is
    // V8's to collect when it likes, and the faster the attack goes (an idle machine) the more of
    // it waits: measured 180-210 MB under load average ~12, 320-370 MB idle. There, what serving
    // normally takes plus twice the memory budget — "a few hundred MB" — where the code before the
    // send budget passed 1 GB within these 8 s.
    const limit = cluster ? WORKER_MEMORY_MB + SEND_BUDGET_MB : baseline + 2 * WORKER_MEMORY_MB
    t.ok(peak <= limit, `peak RSS ${Math.round(peak)} MB ≤ ${Math.round(limit)} MB (baseline ${Math.round(baseline)} MB; per process: ${JSON.stringify(Object.fromEntries([...peaks].map(([p, v]) => [p, Math.round(v)])))})`)
  })
}


/** Socket descriptors a process holds (/proc/<pid>/fd): the connections it has not closed. */
function socketFds (pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++ } catch { /* closed meanwhile */ }
  }
  return n
}

async function until (what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return Date.now()
}

t.test('slow read that stalls (a read every 60 s), channel-timeout 2 s: the server closes its connections after channel-timeout', async (t) => {
  const channelTimeoutMs = 2000
  const port = await freePort()
  const server = spawnServer(t, [PRODSERVER, 'serve', ATTACK_APP, '--host', '127.0.0.1', '--port', String(port),
    '--channel-timeout', `${channelTimeoutMs}ms`, '--cleanup-interval', '250ms'])
  await server.waitLine('listening', 30_000)
  await server.waitLine('control socket listening', 30_000) // its socket is in the count too
  const before = socketFds(server.pid)
  // Few enough connections that their 1 MB responses stay under the send budget (25 MB): only the
  // channel timeout can close them. The attack outlasts the wait below by far: slowhttptest's own
  // end is not what closes them (it reads every 60 s, so it would not even notice a close itself).
  const connections = 10
  startSlowHttpTest(t, {
    mode: 'slow-read',
    url: `http://127.0.0.1:${port}/big`,
    connections,
    rate: connections,
    seconds: 60,
    window: [512, 1024],
    readBytes: 32,
    readEverySeconds: 60,
    pipelined: 1
  })
  const allIn = await until(`${connections} attack connections`, () => socketFds(server.pid) >= before + connections, 15_000)
  // A loopback send buffer takes the whole 1 MB, so the response is finished for Node and the
  // connection is idle: closed at channel-timeout (also the keep-alive timeout) + Node's 1 s.
  const allClosed = await until('the server to close them', () => socketFds(server.pid) <= before, 10 * channelTimeoutMs)
  const heldMs = allClosed - allIn
  t.ok(heldMs >= channelTimeoutMs - 500, `not before channel-timeout: held ${heldMs} ms`)
  t.ok(heldMs < 10 * channelTimeoutMs, `closed ${heldMs} ms after they stalled (channel-timeout ${channelTimeoutMs} ms)`)
  t.notOk(server.lines.some((l) => /over the send budget/.test(l.msg ?? '')), 'not by the send budget')
})
