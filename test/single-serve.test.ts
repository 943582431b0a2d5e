/**
 * Single-process mode: the launched process itself serves (no primary), sizes its libuv pool, and
 * drains on SIGTERM; an app module that cannot be used is one line on stderr and a non-zero exit.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, CLI, APP } from './helpers/process'

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

t.test('single mode: an app module that fails to load or is not a plugin is one line and exit != 0', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-single-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'syntax.js'), 'module.exports = async function (fastify) {\n  fastify.get("/", async () => "x"\n}\n')
  fs.writeFileSync(path.join(dir, 'object.js'), 'module.exports = { hello: "not a plugin" }\n')
  const port = await freePort()

  const cases: Array<[string, RegExp]> = [
    ['syntax.js', /^prodserver: cannot load app module syntax\.js: .*missing \) after argument list/],
    ['object.js', /^prodserver: app module object\.js does not export a Fastify plugin/],
    ['missing.js', /^prodserver: cannot load app module missing\.js: Cannot find module/]
  ]
  for (const [file, message] of cases) {
    // Relative paths resolve against the working directory, like fastify-cli.
    const p = spawnServer(t, [CLI, file, ...flags(port)], { cwd: dir })
    const exit = await p.waitExit()
    t.not(exit.code, 0, `${file}: exit ${exit.code}`)
    t.equal(p.stderr().trim().split('\n').length, 1, `${file}: one line`)
    t.match(p.stderr(), message, `${file}: says what is wrong`)
  }
})
