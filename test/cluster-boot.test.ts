/**
 * Start-up: a bad deploy halts the whole server instead of fork-looping; the "script runs again in
 * each worker" pattern works; workers get the plan's env (shared session secret, worker count,
 * thread pool, heap cap).
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, clusterFlags, CLI, FIXTURES } from './helpers/process'

t.test('a worker that fails to boot halts the server: non-zero exit, its error on stderr, no fork loop', async (t) => {
  const port = await freePort()
  const began = Date.now()
  const p = spawnServer(t, [CLI, path.join(FIXTURES, 'cluster-broken-app.js'), ...clusterFlags(port, ['--workers', '2'])])
  const exit = await p.waitExit(15_000)
  const tookMs = Date.now() - began
  t.not(exit.code, 0, `exit code ${exit.code}`)
  t.ok(tookMs < 12_000, `halted in ${tookMs} ms`)
  t.match(p.stderr(), /failed to boot: database unreachable: config DB_URL is missing \(broken-app-42\)/, 'stderr names the error')
  t.match(p.stderr(), /at .*cluster-broken-app\.js:\d+/, 'and where it was thrown (file:line)')
  const boots = p.lines.filter((l) => l.msg === 'worker started')
  t.ok(boots.length >= 1 && boots.length <= 2, `${boots.length} worker boots attempted for 2 workers (no loop)`)
  t.ok(p.lines.some((l) => l.msg === 'worker exited before it was ready: halting' && l.action === 'halt'), 'the halt is logged')
  await t.rejects(get(port, '/'), 'nothing listens afterwards')
})

t.test('cluster mode: an app with a syntax error halts with the message and the file:line', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-boot-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'syntax.js'), 'module.exports = async function (fastify) {\n  fastify.get("/", async () => "x"\n}\n')
  const port = await freePort()
  const p = spawnServer(t, [CLI, 'syntax.js', ...clusterFlags(port, ['--workers', '2'])], { cwd: dir })
  const exit = await p.waitExit()
  t.not(exit.code, 0)
  t.match(p.stderr(), /failed to boot: cannot load app module syntax\.js: missing \) after argument list\n/, 'what is wrong')
  t.match(p.stderr(), /syntax\.js:2\n/, 'and where')
})

t.test('a module path that does not exist fails at once with one line', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, './no-such-app.js', ...clusterFlags(port, ['--workers', '2'])])
  const exit = await p.waitExit()
  t.not(exit.code, 0)
  t.equal(p.stderr().trim().split('\n').length, 1, 'one line')
  t.match(p.stderr(), /cannot load app module \.\/no-such-app\.js: not found/)
  t.equal(p.lines.filter((l) => l.msg === 'worker started').length, 0, 'no worker was forked')
})

t.test('serve({ app, cluster: true }) in a script: the primary forks the script, each worker serves', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [path.join(FIXTURES, 'cluster-script.js')], {
    env: { PRODSERVER_HOST: '127.0.0.1', PRODSERVER_PORT: String(port), PRODSERVER_WORKERS: '2', PRODSERVER_WORKER_MEMORY_MB: '128', PRODSERVER_THREADS: '3', SESSION_SECRET: '', PRODSERVER_SESSION_SECRET: '' }
  })
  const resolved = await p.waitLine('script: serve resolved')
  t.equal(resolved.role, 'primary', 'serve() in the primary resolves with role primary once workers are ready')
  t.same(resolved.addresses, [`http://127.0.0.1:${port}`])
  t.equal(p.lines.filter((l) => l.msg === 'worker ready').length, 2, 'both workers were ready before it resolved')

  const seen = new Map<number, any>()
  for (let i = 0; i < 6; i++) {
    const r = await get(port, '/env')
    seen.set(r.json.pid, r.json)
  }
  t.equal(seen.size, 2, 'two worker processes answer')
  const envs = [...seen.values()]
  t.ok(envs.every((e) => e.secretLength >= 32), 'each worker got a session secret of at least 32 characters')
  t.equal(new Set(envs.map((e) => e.secretHash)).size, 1, 'the same secret in every worker')
  t.ok(envs.every((e) => e.workerCount === '2'), 'PRODSERVER_WORKER_COUNT=2 in every worker')
  t.ok(envs.every((e) => e.threads === '3'), 'UV_THREADPOOL_SIZE = threads in every worker')
  t.ok(envs.every((e) => e.heapLimitMb < 300), `V8 heap capped from worker-memory-mb 128 (heap limits ${envs.map((e) => e.heapLimitMb).join(', ')} MB)`)
  t.equal(p.lines.filter((l) => /SESSION_SECRET is not set/.test(String(l.msg))).length, 1, 'one warning about the generated secret')
})
