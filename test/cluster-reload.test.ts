/**
 * SIGHUP: rolling reload, one worker at a time, under load with zero failed requests; new workers
 * load the app from disk again; the session secret survives; a broken new version is refused and
 * the old workers keep serving.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, pidsServing, clusterFlags, CLI, APP } from './helpers/process'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon')

function appCopy (t: { teardown (fn: () => unknown): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-reload-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'app.js')
  fs.copyFileSync(APP, file)
  return file
}

function rewrite (file: string, from: string, to: string): void {
  const text = fs.readFileSync(file, 'utf8')
  if (!text.includes(from)) throw new Error(`${from} not in ${file}`)
  fs.writeFileSync(file, text.replace(from, to))
}

t.test('SIGHUP under load: every worker replaced, new code served, zero failed requests', async (t) => {
  const port = await freePort()
  const file = appCopy(t)
  const p = spawnServer(t, [CLI, file, ...clusterFlags(port, ['--workers', '2'])])
  await p.waitLine('all workers ready')
  const before = await pidsServing(port)
  t.equal(before.size, 2)
  t.equal((await get(port, '/')).json.text, 'version-1')
  const secretBefore = (await get(port, '/env')).json.secretHash as string
  t.ok(secretBefore, 'a generated session secret is in use')

  rewrite(file, "const TEXT = 'version-1'", "const TEXT = 'version-2'")

  const served = new Map<string, Set<number>>()
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 10,
    duration: 60,
    requests: [{
      method: 'GET',
      path: '/',
      onResponse: (status: number, body: string) => {
        if (status !== 200) return
        const { pid, text } = JSON.parse(body) as { pid: number, text: string }
        if (!served.has(text)) served.set(text, new Set())
        served.get(text)?.add(pid)
      }
    }]
  })
  const done = new Promise<any>((resolve) => instance.on('done', resolve))
  await new Promise((resolve) => setTimeout(resolve, 800))
  p.signal('SIGHUP')
  await p.waitLine('reload done', 30_000)
  await new Promise((resolve) => setTimeout(resolve, 800))
  instance.stop()
  const result = await done

  t.ok(result.requests.total > 200, `load ran through the reload: ${result.requests.total} requests`)
  t.equal(result.errors, 0, 'no connection errors')
  t.equal(result.timeouts, 0, 'no timeouts')
  t.equal(result.non2xx, 0, 'no non-2xx answers')
  t.equal(result.resets, 0, 'no resets')

  const replaced = p.lines.filter((l) => l.msg === 'worker replaced')
  t.equal(replaced.length, 2, 'two workers replaced')
  t.same(new Set(replaced.map((l) => l.old)), before, 'the two old workers')
  // Order, as logged: new worker ready, then (only then) the old one drains.
  for (const r of replaced) {
    const readyAt = p.lines.findIndex((l) => l.msg === 'worker ready' && l.worker === r.fresh)
    const drainAt = p.lines.findIndex((l) => l.msg === 'worker draining' && l.worker === r.old)
    t.ok(readyAt !== -1 && drainAt > readyAt, `old ${String(r.old)} drained only after new ${String(r.fresh)} was ready`)
  }
  t.ok((served.get('version-2')?.size ?? 0) >= 2, 'the new code was served under load')

  const after = await pidsServing(port)
  t.equal(after.size, 2)
  for (const pid of after) t.notOk(before.has(pid), `worker ${pid} is new`)
  t.equal((await get(port, '/')).json.text, 'version-2', 'new workers read the app from disk again')
  t.equal((await get(port, '/env')).json.secretHash, secretBefore, 'the session secret survived the reload')
})

t.test('a reload whose new code fails to boot is aborted; the old workers keep serving', async (t) => {
  const port = await freePort()
  const file = appCopy(t)
  const p = spawnServer(t, [CLI, file, ...clusterFlags(port, ['--workers', '2'])])
  await p.waitLine('all workers ready')
  const before = await pidsServing(port)

  rewrite(file, 'module.exports = async function app (fastify) {', "module.exports = async function app (fastify) {\n  throw new Error('bad release 7')")
  p.signal('SIGHUP')
  const aborted = await p.waitLine('reload aborted', 15_000)
  t.match(aborted.error, /bad release 7/, 'the boot error is logged')
  t.equal(aborted.action, 'keep old workers')
  t.equal(p.lines.filter((l) => l.msg === 'worker draining').length, 0, 'no old worker was drained')

  const now = await pidsServing(port)
  t.same(now, before, 'the same old workers answer')
  t.equal((await get(port, '/')).json.text, 'version-1')
  t.equal(p.exited(), undefined, 'the server did not halt')

  // Fixed on disk, the next SIGHUP goes through.
  rewrite(file, "  throw new Error('bad release 7')\n", '')
  rewrite(file, "const TEXT = 'version-1'", "const TEXT = 'version-3'")
  p.signal('SIGHUP')
  await p.waitLine('reload done', 30_000)
  t.equal((await get(port, '/')).json.text, 'version-3')
  const after = await pidsServing(port)
  for (const pid of after) t.notOk(before.has(pid), `worker ${pid} is new`)
})
