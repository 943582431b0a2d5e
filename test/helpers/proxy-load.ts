/**
 * The proxy tests' common steps: start `prodserver serve` with the proxy fixture app, run wrk POST
 * and GET load through a proxy around a scenario (signals), and check what the clients and the
 * proxy saw. See test/proxy-*.test.ts.
 *
 * The app does ~1 ms of synchronous work per request, so under this load the event loop reads
 * late: a connection node:http believes idle often already holds the proxy's next request in the
 * kernel — the condition that turns "close idle connections" into resets. With the drain of
 * before (close idle connections after a short linger) the nginx reload test failed 3 runs of 3
 * with this load (2 to 28 resets per run).
 */
import type { Test } from 'tap'
import path from 'node:path'
import { ROOT, type ServerProcess } from './process'
import { serveCli } from './serve-cli'
import type { Nginx } from './nginx'
import type { Haproxy } from './haproxy'
import { startWrk, type WrkResult } from './wrk'

const APP = path.join(ROOT, 'test', 'fixtures', 'proxy-app.js')

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export async function serveBehindProxy (t: Test, extra: string[]): Promise<{ p: ServerProcess, port: number }> {
  return await serveCli(t, APP, ['--graceful-timeout', '10s', ...extra])
}

export interface Loaded { post: WrkResult, get: WrkResult }

/**
 * POST and GET load through the proxy around `scenario`, plus a second of steady load after it.
 * By default 64 clients against nginx's 32 pooled connections, requests of varying length: nginx
 * keeps opening, reusing and dropping upstream connections, hot and cold ones alike. `clients: 32`
 * stays within the pool (nginx opens a new connection only to replace one it was told to close).
 * wrk's timeout bounds a lost request; it is not a latency target (this machine is shared).
 */
export async function throughProxy (url: string, scenario: () => Promise<void>, { clients = 64 } = {}): Promise<Loaded> {
  const post = startWrk({ url: `${url}/echo?cpu=1&wait=30`, method: 'POST', seconds: 120, connections: clients - 8, timeoutS: 30 })
  const get = startWrk({ url: `${url}/?cpu=1&wait=30`, seconds: 120, connections: 8, timeoutS: 30 })
  await sleep(1000)
  try {
    await scenario()
    await sleep(1000)
  } finally {
    await Promise.all([post.stop(), get.stop()])
  }
  return { post: await post.done, get: await get.done }
}

export function nothingLost (t: Test, r: Loaded): void {
  for (const [method, w] of [['POST', r.post], ['GET', r.get]] as const) {
    t.ok(w.requests >= 10, `${method} load ran: ${w.requests} requests`)
    t.equal(w.non2xx, 0, `${method}: no non-2xx answer`)
    t.same(w.errors, { connect: 0, read: 0, write: 0, timeout: 0 }, `${method}: no socket error`)
  }
}

/** No reset or premature close in the error log; every request answered 200 by its first upstream try. */
export function nginxSawNoFailure (t: Test, nginx: Nginx, { retriesAllowed = false } = {}): void {
  t.same(nginx.upstreamFailures(), [], 'nginx error log: no upstream reset or premature close')
  const answered = nginx.access().filter((a) => a.status !== 499) // 499: wrk closed at the end of the run
  const bad = answered.filter((a) => a.status !== 200 || (!retriesAllowed && a.upstreamStatus !== '200'))
  t.same(bad.map((a) => `${a.method} ${a.status} upstream ${a.upstreamStatus} after ${a.requestTime} s, at ${a.at}`), [],
    retriesAllowed ? 'nginx access log: every request answered 200' : 'nginx access log: every request answered 200 by the first upstream try (no silent retry)')
}

export function haproxySawNoFailure (t: Test, haproxy: Haproxy): void {
  t.same(haproxy.serverFailures().map((e) => e.line), [], 'HAProxy log: no request broken or retried on the server side')
  // CR: a connection that sent no request (the harness's readiness probe).
  t.same(haproxy.access().filter((e) => e.status !== 200 && e.termination !== 'CR').map((e) => e.line), [], 'HAProxy log: every request answered 200')
}

export const replaced = (p: ServerProcess, reason: string): number => p.lines.filter((l) => l.msg === 'worker replaced' && l.reason === reason).length

export async function reload (p: ServerProcess, times: number): Promise<void> {
  for (let i = 1; i <= times; i++) {
    p.signal('SIGHUP')
    await p.waitLines('reload done', i, 60_000)
  }
}

export async function recycles (p: ServerProcess, count: number): Promise<void> {
  await p.waitLines((l) => l.msg === 'worker replaced' && l.reason === 'recycle', count, 60_000)
}
