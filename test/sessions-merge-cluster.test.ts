/**
 * Issue 14, black box: one user's parallel requests each change a different key of one session,
 * and every change lands — through `prodserver serve` with 3 workers (so the requests of one
 * session are served by different processes at the same moment) on the file and Redis stores, and
 * in a single process on the memory store. Each of 10 client loops has its own keep-alive
 * connection and increments only its own key 50 times; at the end every key must be exactly 50.
 *
 * With `--session-writes replace` (whole-session writes, what @fastify/session's stores do) the same
 * run loses updates: that proves this test can fail.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, clusterFlags, FIXTURES, ROOT } from './helpers/process'
import { startRedis } from './helpers/redis-server'

const PRODSERVER = path.join(ROOT, 'dist', 'lib', 'cli.js')
const APP = path.join(FIXTURES, 'merge-app.js')
const LOOPS = 10
const INCREMENTS = 50
const STYLES = ['set', 'assign', 'nested'] as const
const SECRET = 'merge-test-secret-0123456789-abcdefghijklmnop'

interface Served { port: number }

async function serve (t: Test, flags: string[], env: NodeJS.ProcessEnv): Promise<Served> {
  const port = await freePort()
  const workers = flags.includes('--workers')
  const p = spawnServer(t, [PRODSERVER, 'serve', APP, ...clusterFlags(port, flags)], {
    env: { SESSION_SECRET: SECRET, PRODSERVER_LOG_LEVEL: 'info', ...env }
  })
  await p.waitLine(workers ? 'all workers ready' : 'listening', 30_000)
  return { port }
}

interface Reply { status: number, json: any, setCookie?: string[], reused: boolean }

function request (port: number, method: string, urlPath: string, agent: http.Agent, cookie?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers: cookie === undefined ? {} : { cookie }, timeout: 20_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        let json: unknown
        try { json = JSON.parse(body) } catch { json = body }
        resolve({ status: res.statusCode ?? 0, json, setCookie: res.headers['set-cookie'], reused: req.reusedSocket })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/** loopPids[i]: the processes that answered loop i; fresh[i]: its requests sent on a new connection. */
interface Run { final: Record<string, unknown>, counts: number[], pids: Set<number>, loopPids: Array<Set<number>>, fresh: number[], failures: string[] }

/** The story: log in, then 10 loops in parallel, each on its own keep-alive connection. */
async function parallelIncrements (port: number): Promise<Run> {
  const login = await request(port, 'POST', '/login', new http.Agent({ keepAlive: false }))
  const cookie = login.setCookie?.[0]?.split(';')[0]
  if (login.status !== 200 || cookie === undefined) throw new Error(`login answered ${login.status} without a cookie`)
  const pids = new Set<number>()
  const loopPids = Array.from({ length: LOOPS }, () => new Set<number>())
  const fresh = Array<number>(LOOPS).fill(0)
  const failures: string[] = []
  const agents: http.Agent[] = []
  await Promise.all(Array.from({ length: LOOPS }, async (_, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    const style = STYLES[i % STYLES.length]
    for (let n = 0; n < INCREMENTS; n++) {
      const r = await request(port, 'POST', `/inc?key=k${i}&style=${style}`, agent, cookie)
      if (!r.reused) fresh[i]++
      if (r.status !== 200) failures.push(`k${i} #${n + 1}: ${r.status} ${JSON.stringify(r.json)}`)
      else { pids.add(r.json.pid); loopPids[i].add(r.json.pid) }
    }
  }))
  for (const a of agents) a.destroy()
  const state = await request(port, 'GET', '/state', new http.Agent({ keepAlive: false }), cookie)
  const final = state.json as Record<string, unknown>
  const counts = Array.from({ length: LOOPS }, (_, i) => {
    const v = final[`k${i}`] as number | { count: number } | undefined
    return typeof v === 'object' && v !== null ? v.count : v ?? 0
  })
  return { final, counts, pids, loopPids, fresh, failures }
}

function assertAllLanded (t: Test, run: Run, workers: number): void {
  t.same(run.failures, [], 'every request answered 200')
  t.same(run.fresh, Array(LOOPS).fill(1), 'each loop sent all its requests on one keep-alive connection')
  t.same(run.loopPids.map((s) => s.size), Array(LOOPS).fill(1), 'so each loop was served by one process throughout')
  // Round-robin over the 3 workers (cluster/primary.ts): 10 connections land on all of them.
  t.equal(run.pids.size, workers, `the loops' connections were spread over ${workers} process(es), serving the session at once`)
  t.same(run.counts, Array(LOOPS).fill(INCREMENTS), `every key is exactly ${INCREMENTS}: no update lost`)
  t.equal(run.final.user, 'ada', 'the key no loop touched is intact')
}

function assertLostUpdates (t: Test, run: Run): void {
  t.same(run.failures, [], 'every request answered 200')
  const total = run.counts.reduce((a, b) => a + b, 0)
  t.ok(total < LOOPS * INCREMENTS, `whole-session writes lost ${LOOPS * INCREMENTS - total} of ${LOOPS * INCREMENTS} updates (counts ${run.counts.join(',')})`)
}

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-merge-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('file store, 3 workers: 10 parallel loops × 50 increments of their own key all land', async (t) => {
  const { port } = await serve(t, ['--workers', '3'], { SESSION_STORE: 'file', SESSION_DIR: tmpDir(t) })
  assertAllLanded(t, await parallelIncrements(port), 3)
})

t.test('Redis store, 3 workers: 10 parallel loops × 50 increments of their own key all land', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const { port } = await serve(t, ['--workers', '3'], { SESSION_STORE: 'redis', REDIS_URL: redis.url })
  assertAllLanded(t, await parallelIncrements(port), 3)
})

t.test('memory store, single process: 10 parallel loops × 50 increments of their own key all land', async (t) => {
  const { port } = await serve(t, [], { SESSION_STORE: 'memory' })
  assertAllLanded(t, await parallelIncrements(port), 1)
})

t.test('--session-writes replace (the opt-out): the same run loses updates, on every store', async (t) => {
  await t.test('file, 3 workers', async (t) => {
    const { port } = await serve(t, ['--workers', '3', '--session-writes', 'replace'], { SESSION_STORE: 'file', SESSION_DIR: tmpDir(t) })
    assertLostUpdates(t, await parallelIncrements(port))
  })
  await t.test('Redis, 3 workers', async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop())
    const { port } = await serve(t, ['--workers', '3'], { SESSION_STORE: 'redis', REDIS_URL: redis.url, SESSION_WRITES: 'replace' })
    assertLostUpdates(t, await parallelIncrements(port))
  })
  await t.test('memory, single process', async (t) => {
    const { port } = await serve(t, [], { SESSION_STORE: 'memory', SESSION_WRITES: 'replace' })
    assertLostUpdates(t, await parallelIncrements(port))
  })
})
