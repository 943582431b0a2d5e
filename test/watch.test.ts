/**
 * --watch / -w, as a developer uses it: edit a file and the server serves the new code — single
 * mode restarts, cluster mode reloads one worker at a time while clients keep getting answers.
 * Changes are debounced (a burst of writes is one restart); node_modules, .git, dot-directories
 * and *.log never restart anything; a broken edit is reported and the next edit recovers.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, eventually, ROOT, type LogLine } from './helpers/process'

const BIN = path.join(ROOT, 'dist', 'lib', 'cli.js')
type Tap = tap.Test

const appSource = (version: string): string =>
  `module.exports = async function (fastify) {\n  fastify.get('/', async () => ({ version: ${JSON.stringify(version)}, pid: process.pid }))\n}\n`

function project (t: Tap): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-watch-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'app.js'), appSource('v1'))
  for (const d of ['node_modules/dep', '.git', '.cache']) fs.mkdirSync(path.join(dir, d), { recursive: true })
  return dir
}

const versionIs = (port: number, version: string) => async () => {
  const r = await get(port, '/').catch(() => undefined)
  return r?.json?.version === version ? r.json : undefined
}

t.test('single mode -w: an edit restarts the server; a burst is one restart; ignored paths restart nothing', async (t) => {
  const dir = project(t)
  const port = await freePort()
  const p = spawnServer(t, [BIN, 'serve', 'app.js', '-w', '-a', '127.0.0.1', '-p', String(port)], { cwd: dir })
  await p.waitLine('watching for changes')
  const first = await eventually(versionIs(port, 'v1'), 20_000, 'v1 served')

  // Paths that must not count, written in the same instant as the real edits: had any of them
  // been seen, it would be in the one restart's list of changes (or cause a restart of its own).
  fs.writeFileSync(path.join(dir, 'node_modules', 'dep', 'index.js'), 'x')
  fs.writeFileSync(path.join(dir, '.git', 'index'), 'x')
  fs.writeFileSync(path.join(dir, '.cache', 'x.json'), '{}')
  fs.writeFileSync(path.join(dir, 'server.log'), 'a log line\n')
  for (const v of ['v2-draft', 'v2-almost', 'v2']) fs.writeFileSync(path.join(dir, 'app.js'), appSource(v)) // an editor saving three times
  const restart = await p.waitLine('watch: restarting')
  t.same(restart.changed, ['app.js'], 'the change seen is the app file only')
  const second = await eventually(versionIs(port, 'v2'), 20_000, 'v2 served')
  t.not(second.pid, first.pid, 'by a new server process')
  t.equal(p.lines.filter((l) => l.msg === 'watch: restarting').length, 1, 'the burst of writes restarted it once')

  // A broken edit: reported, the watcher stays; the next edit brings the server back.
  fs.writeFileSync(path.join(dir, 'app.js'), 'module.exports = async function (fastify) {\n  fastify.get("/", async () => "x"\n}\n')
  await p.waitLine('watch: the server exited; it starts again on the next change')
  t.match(p.stderr(), /app\.js:2/, 'the syntax error is shown with its line')
  fs.writeFileSync(path.join(dir, 'app.js'), appSource('v3'))
  const third = await eventually(versionIs(port, 'v3'), 20_000, 'v3 served')

  p.signal('SIGTERM')
  t.equal((await p.waitExit()).code, 0, 'SIGTERM stops the watcher and the server: exit 0')
  t.throws(() => process.kill(third.pid, 0), 'no server process left behind')
})

t.test('cluster mode -w: an edit reloads the workers one at a time; clients never see an error', async (t) => {
  const dir = project(t)
  const port = await freePort()
  const p = spawnServer(t, [BIN, 'serve', 'app.js', '-w', '--workers', '2', '-a', '127.0.0.1', '-p', String(port), '--graceful-timeout', '5s'], { cwd: dir })
  await p.waitLine('watching for changes', 30_000)
  await p.waitLine('all workers ready', 30_000)

  const outcomes = new Map<string, number>()
  let editing = true
  const clients = Array.from({ length: 8 }, async () => {
    while (editing) {
      const outcome = await get(port, '/', false, 5000).then((r) => `${r.status} ${String(r.json?.version)}`, (err: Error) => err.message)
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
  })
  fs.writeFileSync(path.join(dir, 'app.js'), appSource('v2'))
  const reload = await p.waitLine('watch: reloading workers')
  t.same(reload.changed, ['app.js'])
  await p.waitLine('reload done', 30_000)
  await eventually(versionIs(port, 'v2'), 10_000, 'v2 served')
  editing = false
  await Promise.all(clients)
  const failed = [...outcomes.keys()].filter((o) => !/^200 v[12]$/.test(o))
  t.same(failed, [], `every request during the reload answered 200: ${JSON.stringify(Object.fromEntries(outcomes))}`)
  t.ok((outcomes.get('200 v2') ?? 0) > 0, 'and the new code answers')
  const replaced = p.lines.filter((l: LogLine) => l.msg === 'worker replaced' && l.reason === 'reload')
  t.equal(replaced.length, 2, 'both workers replaced, one at a time (the primary\'s rolling reload)')
})
