/**
 * Lifecycle logs: what an operator reads in the process's stdout — JSON lines (pino, like
 * Fastify's) for every step of a worker's life, reloads and shutdowns, with the pids involved,
 * and the workers' own lines (session store in use, connection-limit saturation) even when the
 * app's Fastify logger is off.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, clusterFlags, CLI, FIXTURES } from './helpers/process'

t.test('a cluster tells its whole life on stdout, one JSON object per line', async (t) => {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-ops-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const p = spawnServer(t, [CLI, path.join(FIXTURES, 'ops-app.js'), ...clusterFlags(port, ['--workers', '2', '--connection-limit', '1'])], {
    env: { SESSION_STORE: 'file', SESSION_DIR: dir }
  })
  const primary = p.pid
  await p.waitLine('all workers ready', 30_000)

  const started = p.lines.filter((l) => l.msg === 'worker started')
  t.equal(started.length, 2, 'worker started, twice')
  for (const l of started) t.ok(l.pid === primary && typeof l.worker === 'number' && l.reason === 'boot', 'primary pid, worker pid and why')
  const ready = p.lines.filter((l) => l.msg === 'worker ready')
  t.same(new Set(ready.map((l) => l.worker)), new Set(started.map((l) => l.worker)), 'each started worker reported ready')
  const stores = await p.waitLines((l) => l.msg === 'sessions: file store' && l.role === 'worker', 2)
  t.same(new Set(stores.map((l) => l.pid)), new Set(started.map((l) => l.worker)), "each worker logs its session store although the app's logger is off")

  // connection-limit 1 per worker, three slow requests at once: one worker must queue one.
  const slow = [0, 1, 2].map(() => get(port, '/slow?ms=800'))
  const saturated = await p.waitLine((l) => typeof l.msg === 'string' && l.msg.startsWith('connection limit 1 reached'))
  t.equal(saturated.role, 'worker', 'saturation reaches the log from the worker')
  t.equal(saturated.level, 40, 'as a warning')
  await Promise.all(slow)
  await p.waitLine((l) => typeof l.msg === 'string' && l.msg.startsWith('connection queue empty again'))
  t.equal(p.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('connection limit 1 reached')).length, 1, 'once per episode, not per connection')

  // A crash: exit code and what the primary did about it.
  const victim = (await get(port, '/')).json.pid as number
  await get(port, '/exit').catch(() => undefined)
  const exited = await p.waitLine((l) => l.msg === 'worker exited' && l.action === 'respawn')
  t.equal(exited.code, 1, 'exit code')
  t.equal(exited.signal, null)
  t.ok(typeof exited.worker === 'number' && typeof exited.respawnInMs === 'number', 'which worker, and when it is replaced')
  t.ok(victim > 0)
  await p.waitLine((l) => l.msg === 'worker started' && l.reason === 'respawn')
  await p.waitLines('worker ready', 3, 30_000)

  // A reload, step by step.
  p.signal('SIGHUP')
  const reload = await p.waitLine('reload: replacing workers one at a time')
  t.equal((reload.workers as number[]).length, 2, 'which workers will be replaced')
  await p.waitLine('reload done', 30_000)
  const replacing = p.lines.filter((l) => l.msg === 'replacing worker: new one booting')
  t.equal(replacing.length, 2, 'one replacement at a time, twice')
  for (const l of replacing) t.ok(typeof l.old === 'number' && typeof l.fresh === 'number' && l.reason === 'reload', 'old and new pid')
  t.equal(p.lines.filter((l) => l.msg === 'worker replaced').length, 2)
  t.ok(p.lines.some((l) => l.msg === 'worker exited' && l.reason === 'reload' && l.action === 'none' && l.code === 0), 'a replaced worker exits cleanly, nothing to do')

  p.signal('SIGTERM')
  t.equal((await p.waitExit(20_000)).code, 0)
  t.ok(p.lines.some((l) => l.msg === 'shutdown: draining workers' && l.reason === 'SIGTERM'))
  t.ok(p.lines.some((l) => l.msg === 'stopped' && l.pid === primary))
  const malformed = p.lines.filter((l) => !(typeof l.pid === 'number' && typeof l.level === 'number' && typeof l.time === 'number' && typeof l.msg === 'string'))
  t.same(malformed, [], 'every line has pid, level, time and msg (pino)')
})
