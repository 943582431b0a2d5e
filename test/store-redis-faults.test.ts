/**
 * What users notice when Redis dies or freezes: every session operation ends within its timeout
 * (never the 7–160 s / forever hangs measured for ioredis defaults, research §3.3 L1/L2,
 * ioredis#634), ends as a 503-shaped StoreUnavailableError, recovers by itself, fails fast while
 * Redis is known to be down, and never leaks the REDIS_URL password.
 *
 * Every subtest runs its own private redis-server (they kill and freeze it).
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { freePort, startRedis, type PrivateRedis } from './helpers/redis-server'
import { RedisSessionStore, CircuitOpenError } from '../lib/sessions/stores/redis'
import { StoreUnavailableError } from '../lib/sessions/errors'
import { TimeoutError } from '../lib/sessions/bounded'

const SLACK = 1500 // 2 shared cores: generous, but far below the hangs this guards against
const id = (n: number): string => `FaultTestSessionId${String(n).padStart(14, '0')}`
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Outcome { op: string, ms: number, ok: boolean, err?: unknown, startedAt: number, at: number, loop?: number }

async function server (t: Test, opts?: Parameters<typeof startRedis>[0]): Promise<PrivateRedis> {
  const r = await startRedis(opts)
  t.teardown(() => r.stop()) // stop() SIGCONTs a frozen server before killing it
  return r
}

function recordingLog (): { lines: string[], log: { warn: (o: unknown, m?: string) => void, info: (o: unknown, m?: string) => void } } {
  const lines: string[] = []
  const push = (level: string) => (o: unknown, m?: string) => { lines.push(`${level} ${m ?? ''} ${JSON.stringify(o)}`) }
  return { lines, log: { warn: push('warn'), info: push('info') } }
}

/** Run one timed operation, never throwing. */
async function timed (op: string, fn: () => Promise<unknown>, loop?: number): Promise<Outcome> {
  const startedAt = Date.now()
  const start = performance.now()
  try {
    await fn()
    return { op, ms: performance.now() - start, ok: true, startedAt, at: Date.now(), loop }
  } catch (err) {
    return { op, ms: performance.now() - start, ok: false, err, startedAt, at: Date.now(), loop }
  }
}

/**
 * Waits until every one of `loops` load loops has finished `each` operations started after
 * `since` (however long a loaded machine takes, up to `limit`), and returns those operations.
 */
async function untilEachLoop (outcomes: Outcome[], loops: number, since: number, each: number, limit: number): Promise<Outcome[]> {
  const start = Date.now()
  for (;;) {
    const seen = outcomes.filter((o) => o.loop !== undefined && o.startedAt >= since)
    const perLoop = new Array<number>(loops).fill(0)
    for (const o of seen) perLoop[o.loop as number]++
    if (perLoop.every((n) => n >= each)) return seen
    if (Date.now() - start > limit) throw new Error(`the load loops did not each finish ${each} operations within ${limit} ms (${perLoop.join(',')})`)
    await sleep(20)
  }
}

/** Poll until an operation succeeds; returns ms waited, or throws after `limit`. */
async function untilOk (fn: () => Promise<unknown>, limit: number): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < limit) {
    const r = await timed('probe', fn)
    if (r.ok) return Date.now() - start
    await sleep(50)
  }
  throw new Error(`no successful operation within ${limit} ms`)
}

function assertUnavailable (t: Test, outcomes: Outcome[], bound: number, what: string): void {
  const failures = outcomes.filter((o) => !o.ok)
  const slowest = Math.max(...outcomes.map((o) => o.ms))
  t.ok(slowest < bound, `${what}: every operation settled, slowest ${slowest.toFixed(0)} ms < ${bound} ms`)
  const wrong = failures.filter((o) => !(o.err instanceof StoreUnavailableError) ||
    o.err.statusCode !== 503 || o.err.headers['retry-after'] !== '1' || o.err.message !== 'Session store unavailable')
  t.same(wrong.map((o) => String(o.err)), [], `${what}: all ${failures.length} failures are 503 StoreUnavailableError with Retry-After and a generic message`)
}

t.test('(a) Redis killed under load: bounded 503s, then recovery by itself after a restart', async (t) => {
  const redis = await server(t, { password: 'hunter2' })
  const { lines, log } = recordingLog()
  const store = new RedisSessionStore({ url: redis.url, timeoutMs: 1000, log })
  t.teardown(() => store.close())
  await store.connect(3000)

  const outcomes: Outcome[] = []
  let running = true
  let inFlight = 0
  const LOOPS = 20
  const loops = Array.from({ length: LOOPS }, async (_, w) => {
    let i = 0
    while (running) {
      inFlight++
      const n = w * 1000 + (i++ % 50)
      const r = i % 2 === 0
        ? await timed('set', () => store.set(id(n), `{"w":${w},"i":${i}}`, 60_000), w)
        : await timed('get', () => store.get(id(n)), w)
      inFlight--
      outcomes.push(r)
      if (!r.ok) await sleep(10) // a failing op returns at once; don't spin the shared CPU
    }
  })

  // Every loop has done a set and a get: the load runs (not a fixed sleep: loaded machines vary).
  await untilEachLoop(outcomes, LOOPS, 0, 2, 30_000)
  const beforeKill = outcomes.length
  t.ok(outcomes.every((o) => o.ok), `load runs cleanly before the kill (${beforeKill} ops, each of the ${LOOPS} loops at least 2)`)
  await redis.kill()
  const killedAt = Date.now()
  // Each loop has now finished the operation it had in flight at the kill and two started after it.
  const duringOutage = await untilEachLoop(outcomes, LOOPS, killedAt, 2, 30_000)
  t.ok(duringOutage.every((o) => !o.ok), `operations started while Redis is down fail (${duringOutage.length})`)
  assertUnavailable(t, outcomes, 1000 + SLACK, 'kill')

  await redis.restart()
  const recovered = await untilOk(() => store.set(id(1), '{"back":true}', 60_000), 8000)
  const recoveredAt = Date.now()
  t.ok(recovered < 5000, `operations succeed again ${recovered} ms after the restart, without intervention`)
  const after = await untilEachLoop(outcomes, LOOPS, recoveredAt, 2, 30_000)
  t.ok(after.every((o) => o.ok), `the load loops are healthy again (${after.length} ops started after the recovery, each loop at least 2)`)

  running = false
  await Promise.all(loops)
  t.equal(inFlight, 0, 'nothing left pending')
  t.ok(lines.some((l) => l.startsWith('warn') && l.includes('unavailable')), 'the outage was logged')
  t.ok(lines.some((l) => l.startsWith('info') && l.includes('available again')), 'the recovery was logged')
  t.equal(lines.filter((l) => l.includes('Redis unavailable')).length, 1, 'one outage line, not one per request')
  t.notOk(lines.some((l) => l.includes('hunter2')), 'no log line contains the password')
  const outageErrors = outcomes.filter((o) => !o.ok).map((o) => `${String(o.err)} ${String((o.err as Error).cause)}`)
  t.notOk(outageErrors.some((e) => e.includes('hunter2')), 'no error or cause contains the password')
})

t.test('(b) Redis frozen (SIGSTOP): failures within the timeout, not 20 s; SIGCONT recovers', async (t) => {
  const redis = await server(t)
  const store = new RedisSessionStore({ url: redis.url, timeoutMs: 500 })
  t.teardown(() => store.close())
  await store.connect(3000)
  await store.set(id(1), '{"a":1}', 60_000)

  redis.freeze()
  const first = await Promise.all(Array.from({ length: 9 }, (_, i) =>
    i % 3 === 0
      ? timed('get', () => store.get(id(1)))
      : i % 3 === 1
        ? timed('set', () => store.set(id(100 + i), '{"b":1}', 60_000))
        : timed('patch', () => store.patch(id(1), { set: [['c', '1']], unset: [] }, 60_000))))
  assertUnavailable(t, first, 500 + SLACK, 'freeze')
  t.ok(first.every((o) => !o.ok), 'nothing succeeds against a frozen server')
  t.ok(first.some((o) => o.err instanceof StoreUnavailableError &&
    (o.err.cause instanceof TimeoutError || /timed out/i.test(String((o.err.cause as Error)?.message)))),
  'the cause says it timed out')
  const health = await timed('check', async () => {
    const c = await store.check()
    if (c.ok) throw new Error('check reported ok on a frozen server')
  })
  t.ok(health.ok && health.ms < 500 + SLACK, `check() reports not ok in ${health.ms.toFixed(0)} ms and does not throw`)

  redis.thaw()
  const recovered = await untilOk(() => store.get(id(1)), 6000)
  t.ok(recovered < 4000, `back ${recovered} ms after SIGCONT`)
  t.equal((await store.get(id(1)))?.json, '{"a":1}', 'data survived the freeze')
})

t.test('(c) a user client configured to wait forever is still bounded (kill, freeze, recovery)', async (t) => {
  const redis = await server(t)
  // BullMQ-style connection: maxRetriesPerRequest null + offline queue = ioredis waits forever.
  const client = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: () => 100 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const store = new RedisSessionStore({ client, timeoutMs: 500 })
  t.teardown(() => store.close())
  await store.connect(3000)
  await store.set(id(1), '{"u":1}', 60_000)

  await redis.kill()
  const killed = await Promise.all([
    timed('get', () => store.get(id(1))), timed('set', () => store.set(id(2), '{}', 60_000)),
    timed('touch', () => store.touch(id(1), 60_000)), timed('destroy', () => store.destroy(id(3)))
  ])
  assertUnavailable(t, killed, 500 + SLACK, 'user client, killed')
  t.ok(killed.every((o) => !o.ok), 'all fail while Redis is down')

  await redis.restart()
  const back = await untilOk(() => store.set(id(1), '{"u":2}', 60_000), 8000)
  t.ok(back < 5000, `the user client's reconnect brings the store back (${back} ms)`)

  redis.freeze()
  const frozen = await Promise.all([timed('get', () => store.get(id(1))), timed('set', () => store.set(id(4), '{}', 60_000))])
  assertUnavailable(t, frozen, 500 + SLACK, 'user client, frozen')
  t.ok(frozen.every((o) => !o.ok), 'all fail while Redis is frozen')
  redis.thaw()
  await untilOk(() => store.get(id(1)), 6000)
  t.equal((await store.get(id(1)))?.json, '{"u":2}')
  t.equal(client.status, 'ready', 'the user client is still open and ready')
})

t.test('(d) connect() to a closed port fails within the boot timeout, naming REDIS_URL without the password', async (t) => {
  const port = await freePort() // nothing listens there
  const store = new RedisSessionStore({ url: `redis://user:hunter2@127.0.0.1:${port}` })
  t.teardown(() => store.close())
  const r = await timed('connect', () => store.connect(1000))
  t.notOk(r.ok, 'boot fails')
  t.ok(r.ms >= 900 && r.ms < 1000 + SLACK, `within the boot timeout (${r.ms.toFixed(0)} ms)`)
  const msg = (r.err as Error).message
  t.match(msg, `redis://user:***@127.0.0.1:${port}`, 'names the URL, redacted')
  t.match(msg, /REDIS_URL/, 'names the variable')
  t.match(msg, /ECONNREFUSED/, 'says why')
  t.notMatch(msg, /hunter2/, 'no password')
  t.notMatch(msg, /\n/, 'one line')

  // A frozen server accepts TCP but never answers: boot still ends on time.
  const redis = await server(t)
  redis.freeze()
  const frozen = new RedisSessionStore({ url: redis.url })
  t.teardown(() => frozen.close())
  const f = await timed('connect', () => frozen.connect(800))
  t.ok(!f.ok && f.ms < 800 + SLACK, `connect() to a frozen server fails in ${f.ms.toFixed(0)} ms`)
  redis.thaw()
})

t.test('(e) circuit breaker: after a failure the next operations fail in a few ms, then it heals', async (t) => {
  const redis = await server(t)
  const store = new RedisSessionStore({ url: redis.url, timeoutMs: 400, breakerCooldownMs: 1000 })
  t.teardown(() => store.close())
  await store.connect(3000)
  await store.set(id(1), '{"a":1}', 60_000)

  redis.freeze()
  const first = await timed('get', () => store.get(id(1)))
  t.ok(!first.ok && first.ms >= 350, `the first operation waits its timeout (${first.ms.toFixed(0)} ms)`)
  const next = []
  for (let i = 0; i < 50; i++) next.push(await timed('set', () => store.set(id(1), '{"a":2}', 60_000)))
  const slowest = Math.max(...next.map((o) => o.ms))
  t.ok(next.every((o) => !o.ok) && slowest < 400 / 2, `the next 50 fail fast, none waits the 400 ms timeout (slowest ${slowest.toFixed(1)} ms)`)
  t.ok(next.every((o) => o.err instanceof StoreUnavailableError && o.err.cause instanceof CircuitOpenError),
    'as StoreUnavailableError caused by the open circuit')

  redis.thaw()
  const healed = await untilOk(() => store.get(id(1)), 4000)
  t.ok(healed <= 1000 + SLACK, `after thaw the cool-down probe closes the circuit (${healed} ms)`)
  t.equal((await store.get(id(1)))?.json, '{"a":1}', 'the fail-fast writes never reached Redis')
})

t.test('a client that ends by itself is started again (ioredis ends a Sentinel client whose master lookup a failover announcement interrupts)', async (t) => {
  const redis = await server(t)
  const { lines, log } = recordingLog()
  const store = new RedisSessionStore({ url: redis.url, timeoutMs: 400, breakerCooldownMs: 300, log })
  t.teardown(() => store.close())
  await store.connect(3000)
  await store.set(id(1), '{"a":1}', 60_000)

  // What ioredis does when its connector's connect() throws: status 'end', no more reconnects.
  const client = store.client as Redis
  const ended = new Promise((resolve) => client.once('end', resolve))
  client.disconnect()
  await ended
  await t.rejects(store.get(id(1)), StoreUnavailableError, 'an ended client fails the operations (503)')
  const back = await untilOk(async () => { if ((await store.get(id(1)))?.json !== '{"a":1}') throw new Error('not back') }, 10_000)
  t.ok(back < 10_000, `the store works again ${back} ms later, without a restart`)
  t.equal(client.status, 'ready', 'the same client, connected again')
  t.equal(lines.filter((l) => /stopped reconnecting by itself/.test(l)).length, 1, 'one warning says so')

  await store.close()
  await sleep(1500)
  t.equal(client.status, 'end', 'a client the store closed is never started again')
})
