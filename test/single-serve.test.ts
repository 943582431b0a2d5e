/**
 * Single-process mode: the launched process itself serves (no primary), sizes its libuv pool, and
 * drains on SIGTERM; an app module that cannot be used is one line on stderr and a non-zero exit,
 * one that throws also shows the stack; no V8 heap cap (and `config` does not claim one).
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import v8 from 'node:v8'
import { spawnServer, freePort, get, CLI, APP, ROOT } from './helpers/process'

const flags = (port: number, extra: string[] = []) => ['--host', '127.0.0.1', '--port', String(port), '--graceful-timeout', '3s', ...extra]

t.test('single mode: one process serves; SIGTERM lets a request in flight finish, then exit 0', async (t) => {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...flags(port, ['--threads', '3'])])
  const listening = await p.waitLine('listening')
  t.equal(listening.role, 'single')
  const env = (await get(port, '/env')).json
  t.equal(env.pid, p.pid, 'the launched process answers itself (no primary, no fork)')
  t.equal(env.threads, '3', 'UV_THREADPOOL_SIZE set from threads')
  t.equal(env.workerCount, null, 'not a cluster worker')

  const inFlight = get(port, '/slow?ms=1000')
  await new Promise((resolve) => setTimeout(resolve, 200))
  p.signal('SIGTERM')
  const reply = await inFlight
  t.equal(reply.status, 200, 'in-flight request answered')
  t.equal(reply.headers.connection, 'close', 'and told the client the connection ends')
  const exit = await p.waitExit(8000)
  t.equal(exit.code, 0, 'exit 0')
  await t.rejects(get(port, '/'), 'the port is closed')
})

t.test('single mode: an app module that cannot be used is one line; one that throws also shows where (file:line)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-single-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'syntax.js'), 'module.exports = async function (fastify) {\n  fastify.get("/", async () => "x"\n}\n')
  fs.writeFileSync(path.join(dir, 'throws.js'), 'module.exports = async function (fastify) {\n  await Promise.resolve()\n  throw new Error("database unreachable")\n}\n')
  fs.writeFileSync(path.join(dir, 'object.js'), 'module.exports = { hello: "not a plugin" }\n')
  const port = await freePort()

  // [file, first line, where it happened (undefined: the message is the whole story)]
  const cases: Array<[string, RegExp, RegExp | undefined]> = [
    ['syntax.js', /^prodserver: cannot load app module syntax\.js: .*missing \) after argument list\n/, /syntax\.js:2\n/],
    ['throws.js', /^prodserver: database unreachable\n/, /at .*throws\.js:3:9/],
    ['object.js', /^prodserver: app module object\.js does not export a Fastify plugin/, undefined],
    ['missing.js', /^prodserver: cannot load app module missing\.js: Cannot find module/, undefined]
  ]
  for (const [file, message, where] of cases) {
    // Relative paths resolve against the working directory, like fastify-cli.
    const p = spawnServer(t, [CLI, file, ...flags(port)], { cwd: dir })
    const exit = await p.waitExit()
    t.not(exit.code, 0, `${file}: exit ${exit.code}`)
    t.match(p.stderr(), message, `${file}: says what is wrong`)
    if (where === undefined) t.equal(p.stderr().trim().split('\n').length, 1, `${file}: one line`)
    else t.match(p.stderr(), where, `${file}: and where`)
  }
})

t.test('single mode applies no heap cap, and config says so', async (t) => {
  const port = await freePort()
  const config = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'lib', 'cli.js'), 'config', '--json'], { encoding: 'utf8' })
  const plan = JSON.parse(config.stdout)
  t.equal(plan.mode, 'single')
  t.equal(plan.heapMb, 0, 'config --json: no heap cap in single mode')
  t.match(plan.formula.steps.join('\n'), /Heap: Node's default/)
  const p = spawnServer(t, [CLI, APP, ...flags(port)])
  await p.waitLine('listening')
  const served = (await get(port, '/env')).json
  const nodeDefault = Math.round(v8.getHeapStatistics().heap_size_limit / 1048576)
  t.equal(served.heapLimitMb, nodeDefault, `the server's heap limit is Node's default (${nodeDefault} MB), as config says`)
})
