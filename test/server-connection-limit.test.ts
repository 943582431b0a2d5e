/**
 * connection-limit: excess connections wait (Waitress), they are never reset (Node maxConnections).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import path from 'node:path'
import { makePlan, start, request, sleep, type Reply } from './fixtures/server-helpers'

function concurrencyApp (stats: { running: number, max: number }, ms = 200, hold: Promise<void> = Promise.resolve()) {
  return async (fastify: any): Promise<void> => {
    fastify.get('/work', async () => {
      stats.running++
      stats.max = Math.max(stats.max, stats.running)
      await hold
      await sleep(ms)
      stats.running--
      return { ok: true }
    })
  }
}

/** Polls until `check` holds (a state change of the server), bounded. */
async function until (check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

function logCollector (): { lines: Array<{ level: number, msg: string }>, stream: Writable } {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({
    write (chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb() }
  })
  return { lines, stream }
}

t.test('limit 5, 20 concurrent clients: all served, none reset, never more than 5 at once', async (t) => {
  const stats = { running: 0, max: 0 }
  const logs = logCollector()
  // The first handlers hold until all 20 clients are connected: one saturation episode of exactly
  // 15 waiting connections, however slowly a loaded machine opens them.
  let release = (): void => {}
  const allConnected = new Promise<void>((resolve) => { release = resolve })
  const s = await start(t, makePlan({ connectionLimit: 5 }), concurrencyApp(stats, 200, allConnected), {
    fastifyOptions: { logger: { level: 'info', stream: logs.stream } }
  })
  const pending = Array.from({ length: 20 }, () => request({ port: s.port, path: '/work' }))
  await until(() => s.connections().active === 5 && s.connections().queued === 15 && stats.running === 5, '5 served and 15 waiting')
  const began = Date.now()
  release()
  const results = await Promise.allSettled(pending)
  const elapsed = Date.now() - began
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
  t.same(failed, [], 'no connection was reset or refused')
  t.same(results.map((r) => (r as PromiseFulfilledResult<Reply>).value?.status), Array(20).fill(200), 'all 20 got 200')
  t.equal(stats.max, 5, 'at most (and, with 20 clients connected, exactly) 5 handlers ran at once')
  t.ok(elapsed >= 790, `20 requests of 200 ms through 5 slots take 4 rounds (${elapsed} ms; timers may fire a ms early)`)
  const warns = logs.lines.filter((l) => l.level === 40 && /connection limit 5 reached/.test(l.msg))
  t.equal(warns.length, 1, 'saturation is logged once per episode, not per connection')
  await until(() => s.connections().active === 0, 'every slot released').catch(() => {})
  t.same(s.connections(), { active: 0, queued: 0 }, 'every connection closed and released its slot')
  // The episode ends when a slot stays free with nobody waiting (under attack the queue empties
  // many times while the gate stays full: still one episode).
  t.ok(logs.lines.some((l) => l.level === 30 && /connection queue empty again; 15 connection\(s\) waited for a free slot$/.test(l.msg)), 'end of the episode is logged with its size (nobody had to be closed)')
})

t.test('a waiting connection is not closed by channel-timeout: its wait is ours', async (t) => {
  const stats = { running: 0, max: 0 }
  const s = await start(t, makePlan({ connectionLimit: 1, channelTimeout: '1s', cleanupInterval: '200ms' }), concurrencyApp(stats, 2500))
  const first = request({ port: s.port, path: '/work' })
  await until(() => stats.running === 1, 'the first request in its handler')
  const began = Date.now()
  const second = await request({ port: s.port, path: '/work' })
  t.equal(second.status, 200, 'the queued client is served')
  t.ok(Date.now() - began >= 2000, 'it waited in the queue longer than channel-timeout')
  t.equal((await first).status, 200)
  t.equal(stats.max, 1)
})

t.test('the gate works in a node:cluster round-robin worker', async (t) => {
  const fixture = path.join(__dirname, 'fixtures', 'server-cluster.ts')
  // Only the TypeScript loader: coverage instrumentation of a primary + worker pair is slow on a busy machine.
  const execArgv = process.execArgv.filter((a) => /typescript/.test(a))
  const child = spawn(process.execPath, [...execArgv, fixture], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } })
  t.teardown(() => { child.kill('SIGTERM') })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += String(d)
      const m = /port (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`fixture exited ${code}`)))
  })
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => request({ port, path: '/work' })))
  t.same(results.map((r) => r.status === 'fulfilled' ? r.value.status : String(r.reason)), Array(8).fill(200), 'all 8 served, none reset')
  const max = JSON.parse((await request({ port, path: '/max' })).body).max
  t.equal(max, 2, 'the worker never ran more than its limit of 2 at once')
})
