/**
 * planServer(): the seed's worked examples and deployment scenarios are the test vectors
 * (shared/seeds/003_…), plus the heap rule, keep-alive default, session expectation and refusals.
 */
import t from 'tap'
import { planServer } from '../lib/plan/plan-server'
import { resolveKnobs } from '../lib/config/resolve'
import { KnobError } from '../lib/config/values'
import type { Resources } from '../lib/plan/types'

const machine = (cpus: number, memoryMb: number): Resources => ({ cpus, memoryMb, source: 'test machine' })
/** A plan from options only: no process.env, no /sys. */
const plan = (options: Record<string, unknown>, res: Resources) => planServer({ env: {}, ...options }, res)

t.test('Example 1: 4 cores, 2 GB → 9 (9 workers, or 9 threads in one process)', async (t) => {
  const single = plan({}, machine(4, 2048))
  t.same(single.formula.steps.slice(0, 3), ['CPU-based: (4 * 2) + 1 = 9', 'RAM-based: 2048 / 200 = 10', 'Optimal: min(9, 10) = 9 (CPU-limited)'])
  t.same([single.mode, single.workers, single.threads], ['single', 1, 9])
  const cluster = plan({ cluster: true }, machine(4, 2048))
  t.same([cluster.mode, cluster.workers], ['cluster', 9])
})

t.test('Example 2: 4 cores, 1 GB → 5, RAM-limited', async (t) => {
  const p = plan({ cluster: true }, machine(4, 1024))
  t.same([p.formula.cpuBased, p.formula.ramBased, p.formula.optimal], [9, 5, 5])
  t.equal(p.formula.steps[2], 'Optimal: min(9, 5) = 5 (RAM-limited)')
  t.equal(p.workers, 5)
  t.equal(plan({}, machine(4, 1024)).threads, 5)
})

t.test('Example 3: 4 cores, 1 GB, threads 4 → 1 worker with 4 threads', async (t) => {
  const p = plan({ cluster: true, threads: 4 }, machine(4, 1024))
  t.same([p.workers, p.threads], [1, 4])
  t.equal(p.formula.steps[3], 'With threads: 5 / 4 = 1 worker with 4 threads')
  t.equal(p.sources.workers, 'formula')
  t.equal(p.sources.threads, 'option threads')
})

t.test('Example 4: 2 cores, 512 MB, threads 8 → one process with 8 threads; optimal 2', async (t) => {
  const p = plan({ threads: 8 }, machine(2, 512))
  t.same(p.formula.steps.slice(0, 3), ['CPU-based: (2 * 2) + 1 = 5', 'RAM-based: 512 / 200 = 2', 'Optimal: min(5, 2) = 2 (RAM-limited)'])
  t.same([p.mode, p.workers, p.threads, p.formula.optimal], ['single', 1, 8, 2])
})

t.test('Scenario 1: 8 GB, 4 cores → 9 threads single, 9 workers cluster', async (t) => {
  t.equal(plan({}, machine(4, 8192)).threads, 9)
  t.equal(plan({ cluster: true }, machine(4, 8192)).workers, 9)
})

t.test('Scenario 2: 1 GB, 2 cores, threads 4 → 4 threads single / 1 worker × 4 threads cluster', async (t) => {
  const single = plan({ threads: 4 }, machine(2, 1024))
  t.same([single.workers, single.threads], [1, 4])
  const cluster = plan({ threads: 4, cluster: true }, machine(2, 1024))
  t.same([cluster.workers, cluster.threads], [1, 4])
})

t.test('Scenario 3: 512 MB, 2 cores, threads 4, worker memory 150 → 4 threads / 1 worker', async (t) => {
  const single = plan({ threads: 4, workerMemoryMb: 150 }, machine(2, 512))
  t.same([single.formula.ramBased, single.formula.optimal, single.threads], [3, 3, 4])
  const cluster = plan({ threads: 4, workerMemoryMb: 150, cluster: true }, machine(2, 512))
  t.same([cluster.workers, cluster.threads], [1, 4])
  t.equal(cluster.formula.steps[3], 'With threads: 3 / 4 = 1 worker with 4 threads (minimum enforced)')
})

t.test('Scenario 4: 16 GB, 8 cores, worker memory 300 → 17 workers; with threads 2 → 8', async (t) => {
  const p = plan({ cluster: true, workerMemoryMb: 300 }, machine(8, 16384))
  t.same([p.formula.cpuBased, p.formula.ramBased, p.workers], [17, 54, 17])
  t.equal(plan({ workerMemoryMb: 300 }, machine(8, 16384)).threads, 17)
  const threaded = plan({ cluster: true, workerMemoryMb: 300, threads: 2 }, machine(8, 16384))
  t.same([threaded.workers, threaded.threads], [8, 2])
})

t.test('an explicit worker count always wins, and more than one turns cluster mode on', async (t) => {
  const p = planServer({ env: { WEB_CONCURRENCY: '3' } }, machine(4, 2048))
  t.same([p.mode, p.workers], ['cluster', 3])
  t.equal(p.sources.workers, 'env WEB_CONCURRENCY')
  t.equal(p.sources.mode, 'workers > 1 (env WEB_CONCURRENCY)')
  t.match(p.formula.steps.join('\n'), "Workers: 3 (explicitly set; the formula's 9 is not used)")
  const one = plan({ workers: 1 }, machine(4, 2048))
  t.same([one.mode, one.workers], ['single', 1])
})

t.test('cluster mode without threads keeps Node\'s default libuv pool', async (t) => {
  const p = plan({ cluster: true }, machine(2, 2048))
  t.equal(p.threads, 4)
  t.equal(p.sources.threads, "Node's default libuv pool")
})

t.test('fractional CPUs: the formula counts whole CPUs, at least 1', async (t) => {
  const half = plan({}, machine(0.5, 4096))
  t.same([half.resources.cpus, half.formula.cpuBased], [0.5, 3])
  t.equal(half.formula.steps[0], 'CPUs: 0.5 → 1 (a fractional quota counts whole CPUs, at least 1)')
  const oneAndHalf = plan({ cluster: true }, machine(1.5, 4096))
  t.same([oneAndHalf.resources.cpus, oneAndHalf.formula.cpuBased, oneAndHalf.workers], [1.5, 3, 3])
})

t.test('less memory than one worker budget still runs one worker', async (t) => {
  const p = plan({ cluster: true }, machine(4, 150))
  t.same([p.formula.ramBased, p.formula.optimal, p.workers], [0, 1, 1])
  t.match(p.formula.steps[2], 'max(1, min(9, 0)) = 1 (minimum enforced')
})

t.test('threads are capped at libuv\'s 1024', async (t) => {
  const p = plan({ workerMemoryMb: 32 }, machine(1000, 1024 * 1024))
  t.equal(p.formula.optimal, 2001)
  t.equal(p.threads, 1024)
})

t.test('UV_THREADPOOL_SIZE in the environment is honoured below the threads knob', async (t) => {
  const env = planServer({ env: { UV_THREADPOOL_SIZE: '16' } }, machine(4, 2048))
  t.same([env.threads, env.sources.threads], [16, 'env UV_THREADPOOL_SIZE'])
  const knob = planServer({ env: { UV_THREADPOOL_SIZE: '16', PRODSERVER_THREADS: '8' } }, machine(4, 2048))
  t.equal(knob.threads, 8)
  t.match(knob.warnings.join('\n'), 'threads=8 (env PRODSERVER_THREADS) replaces UV_THREADPOOL_SIZE=16')
  const bad = planServer({ env: { UV_THREADPOOL_SIZE: 'lots' } }, machine(4, 2048))
  t.equal(bad.threads, 9)
  t.match(bad.warnings.join('\n'), 'UV_THREADPOOL_SIZE="lots" in the environment is ignored')
})

t.test('heap cap: 75% of the worker budget, never more than a fair share, at least 64 MB', async (t) => {
  t.equal(plan({ cluster: true }, machine(4, 2048)).heapMb, 150) // 200 MB budget
  t.equal(plan({ cluster: true, workerMemoryMb: 300 }, machine(8, 16384)).heapMb, 225)
  const packed = plan({ workers: 9 }, machine(4, 1024)) // 1024 / 9 = 113 MB each
  t.equal(packed.heapMb, 84)
  t.match(packed.warnings.join('\n'), 'workers=9 (option workers) × worker-memory-mb 200 = 1800 MB is more than the 1024 MB available')
  t.equal(plan({ workers: 20 }, machine(4, 1024)).heapMb, 64)
  t.match(plan({ cluster: true }, machine(4, 2048)).formula.steps.join('\n'), 'Heap per process: 200 * 0.75 = 150 MB')
  const single = plan({}, machine(4, 2048))
  t.equal(single.heapMb, 0, 'single mode: no cap (one process may use the memory)')
  t.match(single.formula.steps.join('\n'), "Heap: Node's default")
})

t.test('send budget: an eighth of the process budget (half of what the heap cap leaves), a fair share when packed, at least 16 MB', async (t) => {
  const MB = 1024 * 1024
  const single = plan({}, machine(4, 2048))
  t.equal(single.server.sendBudgetBytes, 25 * MB, 'worker-memory-mb 200 → 25 MB, single mode too')
  t.match(single.formula.steps.join('\n'), 'Send buffers per process: 200 * 0.125 = 25 MB')
  t.equal(plan({ cluster: true, workerMemoryMb: 400 }, machine(8, 16384)).server.sendBudgetBytes, 50 * MB)
  const packed = plan({ workers: 4 }, machine(4, 512)) // 512 / 4 = 128 MB each
  t.equal(packed.server.sendBudgetBytes, 16 * MB)
  t.match(packed.formula.steps.join('\n'), 'Send buffers per process: min(200, 512 / 4 = 128) * 0.125 = 16 MB')
  t.match(plan({ workers: 8 }, machine(4, 512)).formula.steps.join('\n'), '* 0.125 = 8 MB → 16 MB (minimum)')
})

t.test('keep-alive follows channel-timeout unless set, and warns at or below the proxies\' 60 s idle timeout', async (t) => {
  const dflt = plan({}, machine(2, 2048))
  t.equal(dflt.server.keepAliveTimeoutMs, 120_000)
  t.equal(dflt.sources['keep-alive-timeout'], '= channel-timeout (default)')
  t.same(dflt.warnings, [])
  const short = planServer({ env: { WAITRESS_CHANNEL_TIMEOUT: '30' } }, machine(2, 2048))
  t.equal(short.server.keepAliveTimeoutMs, 30_000)
  const warning = short.warnings.join('\n')
  t.match(warning, 'keep-alive-timeout 30s (= channel-timeout (env WAITRESS_CHANNEL_TIMEOUT)) is not above the 60 s a proxy keeps an idle connection to its backend')
  for (const proxy of ['nginx upstream keepalive_timeout 60s', 'AWS ALB idle timeout 60 s', 'HAProxy', 'keep-alive-timeout + 1 s']) t.match(warning, proxy)
  const set = plan({ channelTimeout: '30s', keepAliveTimeout: '75s' }, machine(2, 2048))
  t.same([set.server.channelTimeoutMs, set.server.keepAliveTimeoutMs, set.warnings], [30_000, 75_000, []])
})

t.test('session store expectation', async (t) => {
  t.equal(planServer({ env: { NODE_ENV: 'test' } }, machine(2, 2048)).sessions.expected, 'memory')
  const redis = planServer({ env: { REDIS_URL: 'redis://u:hunter2@cache:6379/0' } }, machine(2, 2048))
  t.equal(redis.sessions.expected, 'redis')
  t.equal(redis.sessions.fallbackToFile, true)
  t.notMatch(JSON.stringify(redis), 'hunter2')
  const file = plan({}, machine(2, 2048))
  t.same([file.sessions.requested, file.sessions.expected], ['auto', 'file'])
})

t.test('the memory store with more than one worker is refused, naming SESSION_STORE', async (t) => {
  t.throws(() => planServer({ env: { SESSION_STORE: 'memory', WORKERS: '4' } }, machine(2, 2048)),
    { name: 'KnobError', message: /^SESSION_STORE=memory is refused with 4 workers/ })
  t.throws(() => planServer({ env: { NODE_ENV: 'test' }, cluster: true }, machine(2, 2048)),
    { name: 'KnobError', message: /NODE_ENV=test picks the memory session store, which is refused with 5 workers/ })
  t.equal(planServer({ env: { SESSION_STORE: 'memory' } }, machine(2, 2048)).sessions.expected, 'memory')
})

t.test('cpus / memory-mb override detection, and the plan says so', async (t) => {
  const p = planServer({ env: { PRODSERVER_CPUS: '8' } }, machine(2, 2048))
  t.equal(p.resources.cpus, 8)
  t.equal(p.resources.memoryMb, 2048)
  t.equal(p.resources.source, 'test machine; override (PRODSERVER_CPUS)')
  t.equal(p.sources.cpus, 'env PRODSERVER_CPUS')
  t.equal(p.sources['memory-mb'], 'detected: test machine')
  t.equal(p.formula.cpuBased, 17)
  // both overridden: nothing is probed, the numbers are the user's
  const both = planServer({ env: {}, flags: { cpus: '4', 'memory-mb': '1024' } })
  t.same([both.resources.cpus, both.resources.memoryMb, both.resources.source], [4, 1024, 'override (--cpus, --memory-mb)'])
  t.equal(both.threads, 5)
})

t.test('listen plans, Waitress knobs that mean nothing on Node, and a resolution as input', async (t) => {
  const list = plan({ listen: '127.0.0.1:8081 [::1]:8082' }, machine(2, 2048))
  t.same(list.listen, { kind: 'tcp', addresses: [{ host: '127.0.0.1', port: 8081 }, { host: '::1', port: 8082 }], backlog: 1024 })
  const unix = plan({ unixSocket: '/tmp/app.sock', unixSocketPerms: '660' }, machine(2, 2048))
  t.same(unix.listen, { kind: 'unix', path: '/tmp/app.sock', perms: 0o660, backlog: 1024 })
  const resolved = resolveKnobs({ env: { WAITRESS_ASYNCORE_USE_POLL: 'true', PORT: '9000' } })
  const p = planServer(resolved, machine(2, 2048))
  t.same(p.notApplicable, { 'asyncore-use-poll': 'not applicable on Node (libuv uses epoll)' })
  t.same(p.listen, { kind: 'tcp', addresses: [{ host: '0.0.0.0', port: 9000 }], backlog: 1024 })
  t.equal(p.sources.port, 'env PORT')
})

t.test('bad knob values are KnobErrors (exit code 2)', async (t) => {
  const err = t.throws(() => plan({ workers: 0 }, machine(2, 2048))) as KnobError
  t.equal(err.exitCode, 2)
  t.equal(err.message, 'option workers=0 is not valid for workers; accepted: a whole number from 1 to 1024')
})
