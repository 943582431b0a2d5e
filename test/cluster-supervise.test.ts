/**
 * The supervisor keeps the service up: crashed workers are replaced (with backoff), a worker whose
 * event loop is stuck is killed and replaced, and SIGTTIN/SIGTTOU change the worker count.
 */
import t from 'tap'
import { spawnServer, freePort, get, pidsServing, clusterFlags, CLI, APP, type LogLine } from './helpers/process'

const exitedLine = (pid?: number) => (l: LogLine) => l.msg === 'worker exited' && (pid === undefined || l.worker === pid)

t.test('a crashed worker is respawned with growing delays while the others keep answering', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2'])])
  await p.waitLine('all workers ready')
  const original = await pidsServing(port)
  t.equal(original.size, 2, 'two workers answer')

  // 1. The app calls process.exit(1) inside a route.
  await t.rejects(get(port, '/exit'), 'the crashing request itself fails (its worker is gone)')
  const first = await p.waitLine(exitedLine())
  t.equal(first.code, 1, 'exit code of the crashed worker is logged')
  t.equal(first.action, 'respawn')
  for (let i = 0; i < 6; i++) t.equal((await get(port, '/')).status, 200, `request ${i + 1} right after the crash is answered`)
  const replacement = await p.waitLine((l) => l.msg === 'worker ready' && !original.has(l.worker as number))

  // 2. The other original worker is SIGKILLed from outside (what the OOM killer does).
  const victim = [...original].find((pid) => pid !== first.worker) as number
  process.kill(victim, 'SIGKILL')
  const second = await p.waitLine(exitedLine(victim))
  t.equal(second.signal, 'SIGKILL')
  t.match(second.hint, /out of memory/, 'a SIGKILL death hints at the OOM killer')
  t.ok((second.respawnInMs as number) > (first.respawnInMs as number), `backoff grows: ${first.respawnInMs} ms then ${second.respawnInMs} ms`)
  await p.waitLines((l) => l.msg === 'worker ready' && !original.has(l.worker as number) && l.worker !== replacement.worker, 1)

  const now = await pidsServing(port)
  t.equal(now.size, 2, 'back to two workers')
  for (const pid of original) t.notOk(now.has(pid), `crashed worker ${pid} no longer serves`)
  t.equal(p.exited(), undefined, 'the primary is still running')
})

t.test('a worker whose event loop is blocked beyond worker-timeout is killed and replaced', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2'])])
  await p.waitLine('all workers ready')
  const original = await pidsServing(port)

  const began = Date.now()
  const blocked = get(port, '/block?ms=60000').catch((err: Error) => err)
  const timeout = await p.waitLine('worker timeout', 10_000)
  const tookMs = Date.now() - began
  t.ok(original.has(timeout.worker as number), 'the blocked worker is named')
  // Silence is counted from the worker's last heartbeat, which can come up to one heartbeat
  // interval (worker-timeout / 4 = 500 ms) before the blocking request arrives.
  t.ok(tookMs >= 1400 && tookMs < 6000, `killed after worker-timeout (2 s of silence): ${tookMs} ms after the blocking request`)
  t.type(await blocked, Error, 'the request on the stuck worker fails (it was SIGKILLed)')

  const exit = await p.waitLine(exitedLine(timeout.worker as number))
  t.equal(exit.signal, 'SIGKILL')
  t.equal(exit.timedOut, true)
  t.equal(exit.action, 'respawn')
  await p.waitLine((l) => l.msg === 'worker ready' && !original.has(l.worker as number))
  const now = await pidsServing(port)
  t.equal(now.size, 2, 'two workers answer again')
  t.notOk(now.has(timeout.worker as number), 'the stuck worker is gone')
})

t.test('SIGTTIN adds a worker, SIGTTOU drains one gracefully, never below one', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--cluster', '--workers', '1'])])
  await p.waitLine('all workers ready')
  t.equal((await pidsServing(port, 4)).size, 1, 'one worker')

  p.signal('SIGTTIN')
  await p.waitLine((l) => l.msg === 'scale up' && l.to === 2)
  await p.waitLines('worker ready', 2)
  const two = await pidsServing(port)
  t.equal(two.size, 2, 'SIGTTIN: two workers answer')

  // One slow request on each worker, then scale down: the removed worker finishes its request.
  const slow = [get(port, '/slow?ms=1500'), get(port, '/slow?ms=1500')]
  await new Promise((resolve) => setTimeout(resolve, 300))
  p.signal('SIGTTOU')
  const draining = await p.waitLine((l) => l.msg === 'worker draining' && l.reason === 'scale-down')
  const replies = await Promise.all(slow)
  t.same(replies.map((r) => r.status), [200, 200], 'in-flight requests on the removed worker still get 200')
  const gone = await p.waitLine(exitedLine(draining.worker as number))
  t.equal(gone.code, 0, 'the removed worker exits cleanly')
  t.equal(gone.action, 'none', 'and is not respawned')
  const one = await pidsServing(port)
  t.equal(one.size, 1, 'SIGTTOU: one worker answers')

  p.signal('SIGTTOU')
  await p.waitLine((l) => l.msg === 'scale down' && l.from === 1 && l.to === 1)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(p.lines.filter((l) => l.msg === 'worker draining').length, 1, 'the last worker is never removed')
  t.equal((await pidsServing(port, 3)).size, 1, 'and keeps serving')
})
