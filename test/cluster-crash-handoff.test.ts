/**
 * No request is left unanswered when a worker dies, whatever kills it. Under new-connection load
 * (autocannon, a fresh connection per request, so the primary is handing connections to every
 * worker all the time) a worker is SIGKILLed, SIGSTOPped until the heartbeat kills it, or aborts
 * out of memory. Plain node:cluster keeps the connection it was handing to the dead worker forever
 * and that client hangs; here every request gets an answer or an error within autocannon's timeout.
 */
import t, { type Test } from 'tap'
import path from 'node:path'
import { get, pidsServing, ROOT, type LogLine, type ServerProcess } from './helpers/process'
import { serveCli } from './helpers/serve-cli'
import { startNewConnectionLoad, type LoadResult } from './helpers/new-connection-load'

const APP = path.join(ROOT, 'test', 'fixtures', 'crash-app.js')
/** Per-request timeout: far above a hello answer, even on a loaded machine. */
const TIMEOUT_S = 4
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const exited = (pid: number) => (l: LogLine) => l.msg === 'worker exited' && l.worker === pid

async function cluster (t: Test, extra: string[] = []): Promise<{ p: ServerProcess, port: number, workers: number[] }> {
  const { p, port } = await serveCli(t, APP, ['--workers', '2', ...extra])
  return { p, port, workers: [...await pidsServing(port)] }
}

/** Runs new-connection load around `scenario`, then long enough that a stuck request would be counted. */
async function underLoad (port: number, scenario: () => Promise<void>): Promise<LoadResult> {
  const load = startNewConnectionLoad({ url: `http://127.0.0.1:${port}/`, connections: 8, timeoutS: TIMEOUT_S })
  await sleep(1000)
  await scenario()
  await sleep((TIMEOUT_S + 1) * 1000)
  return await load.stop()
}

function assertAllAnswered (t: Test, r: LoadResult): void {
  t.ok(r.requests > 100, `load ran: ${r.requests} requests`)
  t.equal(r.timeouts, 0, `no request waited ${TIMEOUT_S} s without an answer or an error (${r.errors} errors, ${r.non2xx} non-2xx)`)
}

t.test('SIGKILL: the connection in hand-off to the dead worker goes to a live one', async (t) => {
  const { p, port, workers } = await cluster(t)
  const r = await underLoad(port, async () => {
    process.kill(workers[0], 'SIGKILL')
    await p.waitLine(exited(workers[0]))
    await p.waitLine((l) => l.msg === 'worker ready' && !workers.includes(l.worker as number))
    process.kill(workers[1], 'SIGKILL')
    await p.waitLine(exited(workers[1]))
  })
  assertAllAnswered(t, r)
  t.equal((await pidsServing(port, 4)).size, 2, 'two workers serve again')
})

t.test('SIGSTOP past worker-timeout: once the heartbeat kills the worker, its pending connection is served elsewhere', async (t) => {
  const { p, port, workers } = await cluster(t, ['--worker-timeout', '1s'])
  const r = await underLoad(port, async () => {
    process.kill(workers[0], 'SIGSTOP')
    const exit = await p.waitLine(exited(workers[0]))
    t.equal(exit.timedOut, true, 'killed by the heartbeat check')
  })
  assertAllAnswered(t, r)
})

t.test('V8 out of memory: the aborting worker\'s pending connection is served elsewhere', async (t) => {
  const { p, port } = await cluster(t, ['--worker-memory-mb', '64'])
  const r = await underLoad(port, async () => {
    const oom = get(port, '/oom').catch(() => undefined) // its own worker dies: no answer
    const exit = await p.waitLine((l) => l.msg === 'worker exited', 30_000)
    t.ok(exit.signal === 'SIGABRT' || exit.signal === 'SIGTRAP' || exit.code === 134, `the worker aborted (${String(exit.signal ?? exit.code)})`)
    t.match(p.stderr(), /heap out of memory/, 'V8 says why')
    await oom
  })
  assertAllAnswered(t, r)
})
