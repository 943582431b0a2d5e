/**
 * health-path / ready-path / drain-delay: what a load balancer sees. Liveness answers while the
 * process runs; readiness fails first on shutdown, while the server still serves, so the balancer
 * stops sending before connections are closed.
 */
import t from 'tap'
import path from 'node:path'
import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import { makePlan, start, request, sleep } from './fixtures/server-helpers'
import { spawnServer, freePort, get, clusterFlags, CLI, FIXTURES } from './helpers/process'

const probes = { healthPath: '/healthz', readyPath: '/readyz' }

t.test('probes are off by default: the app owns every path', async (t) => {
  const s = await start(t, makePlan(), async (f: any) => { f.get('/', async () => 'app') })
  t.equal((await request({ port: s.port, path: '/healthz' })).status, 404)
  t.equal((await request({ port: s.port, path: '/readyz' })).status, 404)
})

t.test('liveness and readiness answer before the app, even where the app has its own route, and are not counted', async (t) => {
  let appHooks = 0
  const s = await start(t, makePlan(probes), async (f: any) => {
    // An auth-style hook that would refuse a balancer's probe.
    f.addHook('onRequest', async (req: any, reply: any) => { appHooks++; if (req.url !== '/') return reply.code(401).send('who are you?') })
    f.get('/healthz', async () => ({ app: true }))
    f.get('/', async () => 'app')
  })
  const live = await request({ port: s.port, path: '/healthz' })
  t.equal(live.status, 200)
  t.same(JSON.parse(live.body), { live: true })
  t.equal(live.headers['cache-control'], 'no-store', 'never cached by a proxy')
  const ready = await request({ port: s.port, path: '/readyz?probe=lb' })
  t.equal(ready.status, 200, 'a query string does not matter')
  t.same(JSON.parse(ready.body), { ready: true })
  t.equal((await request({ port: s.port, path: '/healthz', method: 'HEAD' })).status, 200, 'HEAD works too')
  t.equal(appHooks, 0, "probes never ran the app's hooks")
  t.equal(s.requestCount(), 0, 'probes do not count towards max-requests')
  t.equal((await request({ port: s.port, path: '/healthz', method: 'POST' })).status, 404, 'other methods go to the app (which has no POST /healthz)')
  t.equal((await request({ port: s.port, path: '/' })).body, 'app')
  t.equal(s.requestCount(), 2)
})

t.test('readiness follows the session store check of an app that registered sessions', async (t) => {
  let ok = true
  const s = await start(t, makePlan(probes), async (f: any) => {
    // Like the sessions plugin (fastify-plugin, inside the encapsulated app): the root cannot see it.
    const backend = { kind: 'redis', reason: 'test', check: async () => ok ? { ok: true, latencyMs: 1 } : { ok: false, error: 'ECONNREFUSED 127.0.0.1:6379' } }
    f.decorate('sessionBackend', backend)
    f.get('/', async () => 'app')
  })
  t.equal((await request({ port: s.port, path: '/readyz' })).status, 200)
  ok = false
  const down = await request({ port: s.port, path: '/readyz' })
  t.equal(down.status, 503)
  t.same(JSON.parse(down.body), { ready: false, reason: 'session store (redis) unavailable: ECONNREFUSED 127.0.0.1:6379' })
  t.equal((await request({ port: s.port, path: '/healthz' })).status, 200, 'the process itself is alive: liveness stays 200')
})

t.test('drain with a drain-delay: readiness 503 at once, liveness 200, still serving, in-flight finishes', async (t) => {
  let entered!: () => void
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const s = await start(t, makePlan({ ...probes, drainDelay: '1500ms' }), async (f: any) => {
    f.get('/', async () => 'app')
    f.get('/slow', async () => { entered(); await sleep(1000); return 'slow done' })
  })
  const slow = request({ port: s.port, path: '/slow' })
  await inside
  const began = Date.now()
  const drained = s.drain(5000, 1500)

  const ready = await request({ port: s.port, path: '/readyz' })
  t.equal(ready.status, 503, 'readiness fails first')
  t.same(JSON.parse(ready.body), { ready: false, reason: 'draining' })
  t.equal((await request({ port: s.port, path: '/healthz' })).status, 200, 'liveness still 200: do not restart me')
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const fresh = await request({ port: s.port, path: '/', agent })
  t.equal(fresh.status, 200, 'a request during the delay is served normally')
  t.not(fresh.headers.connection, 'close', 'with keep-alive: the drain itself has not begun')

  const done = await slow
  t.same([done.status, done.body], [200, 'slow done'], 'the in-flight request finishes')
  await drained
  t.ok(Date.now() - began >= 1400, `the drain waited for drain-delay first (${Date.now() - began} ms)`)
})

t.test('cluster SIGTERM: workers fail readiness for drain-delay while serving, then stop', async (t) => {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-ops-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const p = spawnServer(t, [CLI, path.join(FIXTURES, 'ops-app.js'), ...clusterFlags(port, ['--workers', '2', '--health-path', '/healthz', '--ready-path', '/readyz', '--drain-delay', '2s'])], {
    env: { SESSION_STORE: 'file', SESSION_DIR: dir }
  })
  await p.waitLine('all workers ready', 30_000)
  t.equal((await get(port, '/readyz')).status, 200)
  t.same((await get(port, '/healthz')).json, { live: true }, "the probe answers, not the app's own /healthz route")

  const slow = get(port, '/slow?ms=1500')
  await new Promise((resolve) => setTimeout(resolve, 200))
  p.signal('SIGTERM')
  await p.waitLines((l) => l.msg === 'unready: readiness answers 503 before the drain starts', 2)
  for (let i = 0; i < 2; i++) {
    const r = await get(port, '/readyz')
    t.equal(r.status, 503, `readiness 503 on a fresh connection (${i + 1})`)
    t.same(r.json, { ready: false, reason: 'draining' })
  }
  t.equal((await get(port, '/healthz')).status, 200, 'liveness 200 during the delay')
  t.equal((await get(port, '/')).status, 200, 'requests are still served during the delay')
  t.same((await slow).json?.slow, true, 'the in-flight request finished')
  const exit = await p.waitExit(20_000)
  t.equal(exit.code, 0)
})
