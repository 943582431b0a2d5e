/**
 * `prodserver status|reload|stop` against real servers, through the real CLI: the report while a
 * cluster runs (every field, both workers) and in single mode, a reload and a stop through the
 * control socket, which server is found when there are several, and who may not use the socket.
 */
import t from 'tap'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { spawnServer, freePort, get, pidsServing, eventually, ROOT, APP } from './helpers/process'
import { prodserver, PRODSERVER } from './helpers/cli'

function privateDir (t: { teardown (fn: () => unknown): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function serveArgs (port: number, controlDir: string, extra: string[] = []): string[] {
  return [PRODSERVER, 'serve', APP, '--host', '127.0.0.1', '--port', String(port), '--control-dir', controlDir,
    '--worker-timeout', '2s', '--graceful-timeout', '3s', '--worker-memory-interval', '200ms', ...extra]
}

t.test('status --json while a cluster runs: the plan, both workers with every field, restarts, advice', async (t) => {
  const port = await freePort()
  const dir = privateDir(t, 'prodserver-control-')
  const controlDir = path.join(dir, 'control')
  const p = spawnServer(t, serveArgs(port, controlDir, ['--workers', '2']))
  await p.waitLine('all workers ready')
  const pids = await pidsServing(port)
  for (let i = 0; i < 10; i++) await get(port, '/hello')

  // Requests are reported with each heartbeat; wait until the ones above are in.
  const status = await eventually(async () => {
    const r = await prodserver(['status', '--json', '--control-dir', controlDir])
    t.equal(r.code, 0, r.stderr)
    const s = JSON.parse(r.stdout)
    const served = s.workers.reduce((n: number, w: { requests: number }) => n + w.requests, 0)
    return served >= 16 && s.advice !== null ? s : undefined
  }, 15_000, 'status reporting the requests served')

  // Every field is checked below: a field added to the report must be added here too.
  const fields = (o: object): string[] => Object.keys(o).sort()
  t.same(fields(status), ['advice', 'memoryBudget', 'plan', 'restarts', 'server', 'workers'], 'the report\'s sections')
  t.same(fields(status.server), ['addresses', 'app', 'cwd', 'mode', 'node', 'phase', 'pid', 'startedAt', 'uptimeMs', 'version'])
  t.same(fields(status.plan), ['formula', 'heapMb', 'resources', 'threads', 'workerMemoryMb', 'workers'])
  for (const w of status.workers) t.same(fields(w), ['heapLimitMb', 'heapUsedMb', 'overBudgetSamples', 'pid', 'requests', 'restarts', 'rssMb', 'startedFor', 'state', 'uptimeMs'])
  t.same(fields(status.advice), ['limitedBy', 'p95HeapMb', 'p95RssMb', 'samples', 'text', 'workerMemoryMb', 'workers'])

  t.equal(status.server.pid, p.pid)
  t.equal(status.server.mode, 'cluster')
  t.equal(status.server.phase, 'running')
  t.same(status.server.addresses, [`http://127.0.0.1:${port}`])
  t.equal(status.server.app, APP)
  t.equal(status.server.cwd, ROOT)
  t.match(status.server.version, /^\d+\.\d+\.\d+/)
  t.equal(status.server.node, process.version)
  t.ok(Date.parse(status.server.startedAt) <= Date.now())
  t.ok(status.server.uptimeMs > 0)

  t.equal(status.plan.workers, 2)
  t.equal(status.plan.threads, 4)
  t.equal(status.plan.heapMb, 150)
  t.equal(status.plan.workerMemoryMb, 200)
  t.type(status.plan.resources.cpus, 'number')
  t.type(status.plan.resources.memoryMb, 'number')
  t.type(status.plan.resources.source, 'string')
  t.match(status.plan.formula.join('\n'), /CPU-based: .*\nRAM-based: /)
  t.same(status.memoryBudget, { workerMemoryMb: 200, threshold: 0.7, samples: 2, intervalMs: 200, rssOverMb: 140, heapOverFraction: 0.7 })

  t.equal(status.workers.length, 2, 'both workers')
  t.same(new Set(status.workers.map((w: { pid: number }) => w.pid)), pids, 'the workers that answer requests')
  for (const w of status.workers) {
    t.equal(w.state, 'ready')
    t.equal(w.startedFor, 'boot')
    t.ok(w.uptimeMs > 0 && w.uptimeMs < status.server.uptimeMs + 1000, `uptime ${String(w.uptimeMs)}`)
    t.ok(w.rssMb > 20 && w.rssMb < 1000, `RSS ${String(w.rssMb)} MB`)
    t.ok(w.heapUsedMb > 1 && w.heapUsedMb < 150, `heap ${String(w.heapUsedMb)} MB`)
    t.equal(w.heapLimitMb, 150, 'the heap cap the primary set')
    t.ok(w.requests >= 1, `requests ${String(w.requests)}`)
    t.same(w.restarts, {})
    t.equal(w.overBudgetSamples, 0)
  }
  t.same(status.restarts, { crash: 0, timeout: 0, recycle: 0, reload: 0, scale: 0, memory: 0 })

  const a = status.advice
  t.ok(a.samples >= 2, `${String(a.samples)} memory samples`)
  t.ok(a.p95RssMb > 20 && a.p95RssMb < 1000)
  t.ok(a.p95HeapMb > 1)
  t.ok(a.workerMemoryMb >= 32 && a.workerMemoryMb % 10 === 0)
  t.ok(Number.isInteger(a.workers) && a.workers >= 1)
  t.ok(['cpu', 'ram', 'both'].includes(a.limitedBy), `limited by ${String(a.limitedBy)}`)
  t.match(a.text, { cpu: /CPU-limited/, ram: /RAM-limited/, both: /CPU and RAM agree/ }[a.limitedBy as 'cpu' | 'ram' | 'both'], 'and the text says so')
  t.match(a.text, new RegExp(`^workers use p95 RSS ${String(a.p95RssMb)} MB, p95 heap ${String(a.p95HeapMb)} MB \\(\\d+ samples\\); with WORKER_MEMORY_MB=${String(a.workerMemoryMb)} this machine would run ${String(a.workers)} workers? \\(`))

  const text = await prodserver(['status', '--control-dir', controlDir])
  t.equal(text.code, 0)
  t.match(text.stdout, `cluster mode, pid ${p.pid}, running`)
  t.match(text.stdout, /2 workers × 4 threads, V8 heap cap 150 MB each, worker-memory-mb 200/)
  for (const pid of pids) t.match(text.stdout, new RegExp(`\\n  ${pid}\\s+ready\\s+boot\\s+\\S+\\s+\\d+\\s+\\d+/150\\s+\\d+\\s+—`), `a line for worker ${pid}`)
  t.match(text.stdout, /Restarts since start: crash 0, timeout 0, recycle 0, reload 0, scale 0, memory 0/)
  t.match(text.stdout, /Memory advice\n  workers use p95 RSS \d+ MB/)
})

t.test('status in single mode: the process itself', async (t) => {
  const port = await freePort()
  const dir = privateDir(t, 'prodserver-control-')
  const p = spawnServer(t, serveArgs(port, dir))
  await p.waitLine('control socket listening')
  for (let i = 0; i < 5; i++) await get(port, '/hello')
  const status = await eventually(async () => {
    const s = JSON.parse((await prodserver(['status', '--json', '--control-dir', dir])).stdout)
    return s.advice !== null ? s : undefined
  }, 10_000, 'a memory sample')
  t.equal(status.server.mode, 'single')
  t.equal(status.server.pid, p.pid)
  t.same(status.server.addresses, [`http://127.0.0.1:${port}`])
  t.equal(status.plan.workers, 1)
  t.equal(status.workers.length, 1)
  const w = status.workers[0]
  t.equal(w.pid, p.pid)
  t.equal(w.state, 'serving')
  t.equal(w.startedFor, 'boot')
  t.equal(w.requests, 5, 'every request so far (counted in process)')
  t.ok(w.rssMb > 20)
  t.ok(w.heapUsedMb > 1)
  t.ok(w.heapLimitMb > w.heapUsedMb, "V8's own limit (no cap is set in single mode)")
  t.same(status.restarts, { crash: 0, timeout: 0, recycle: 0, reload: 0, scale: 0, memory: 0 })
  t.match(status.advice.text, /^workers use p95 RSS \d+ MB/)

  const reload = await prodserver(['reload', '--control-dir', dir])
  t.equal(reload.code, 1, 'reload is refused in single mode')
  t.match(reload.stderr, /^prodserver: reload: reload needs cluster mode: .*--cluster/)
  t.equal(reload.stderr.trim().split('\n').length, 1, 'one line')
  t.equal(p.exited(), undefined, 'still serving')
})

t.test('reload through the control socket: returns once every worker is replaced', async (t) => {
  const port = await freePort()
  const dir = privateDir(t, 'prodserver-control-')
  const p = spawnServer(t, serveArgs(port, dir, ['--workers', '2']))
  await p.waitLine('all workers ready')
  const before = await pidsServing(port)

  const r = await prodserver(['reload', '--control-dir', dir])
  t.equal(r.code, 0, r.stderr)
  t.ok(p.lines.some((l) => l.msg === 'reload done'), 'the command returned after the reload was done')
  const m = /^reload done \(pid (\d+)\): workers now (\d+), (\d+)\n$/.exec(r.stdout)
  t.ok(m, r.stdout)
  const now = new Set([Number(m?.[2]), Number(m?.[3])])
  for (const pid of now) t.notOk(before.has(pid), `worker ${pid} is new`)
  t.same(await pidsServing(port), now, 'the new workers serve')

  const status = JSON.parse((await prodserver(['status', '--json', '--control-dir', dir])).stdout)
  t.equal(status.restarts.reload, 2)
  for (const w of status.workers) {
    t.equal(w.startedFor, 'reload')
    t.same(w.restarts, { reload: 1 })
  }
})

t.test('stop through the control socket: the in-flight request is served, the server exits 0', async (t) => {
  const port = await freePort()
  const dir = privateDir(t, 'prodserver-control-')
  const p = spawnServer(t, serveArgs(port, dir, ['--workers', '2']))
  await p.waitLine('all workers ready')
  const slow = get(port, '/slow?ms=1500')
  await new Promise((resolve) => setTimeout(resolve, 200))

  const r = await prodserver(['stop', '--control-dir', dir])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^stopping server pid ${p.pid} .*\\nstopped \\(pid ${p.pid}\\)\\n$`))
  t.ok(p.exited() !== undefined, 'the command returned after the server exited')
  t.same(await p.waitExit(), { code: 0, signal: null }, 'exit code 0')
  t.equal((await slow).status, 200, 'the request in flight was answered')
  t.same(fs.readdirSync(dir), [], 'socket and info file removed')

  const again = await prodserver(['stop', '--control-dir', dir])
  t.equal(again.code, 3, 'nothing left to stop')
})

t.test('no server running: exit 3 and one line', async (t) => {
  const dir = privateDir(t, 'prodserver-control-')
  const commands = ['status', 'reload', 'stop']
  const results = await Promise.all(commands.map((command) => prodserver([command, '--control-dir', path.join(dir, 'none')])))
  for (const [i, command] of commands.entries()) {
    const r = results[i]
    t.equal(r.code, 3, command)
    t.equal(r.stdout, '')
    t.match(r.stderr, new RegExp(`^prodserver: ${command}: no prodserver server is running for this user \\(looked in .*none; set --control-dir if it uses another\\)\\n$`))
  }
  const bad = await prodserver(['status', '--workers', '3'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^prodserver: --workers means nothing to status/)
})

t.test('found without --control-dir or a pid: the per-user directory, private', async (t) => {
  const port = await freePort()
  const tmp = privateDir(t, 'prodserver-tmp-')
  // Its own temp directory and no XDG_RUNTIME_DIR: other servers of this machine's root stay out.
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: '' }
  delete env.PRODSERVER_CONTROL_DIR
  const p = spawnServer(t, [PRODSERVER, 'serve', APP, '--host', '127.0.0.1', '--port', String(port)], { env })
  await p.waitLine('control socket listening')
  const controlDir = path.join(tmp, `prodserver-${String(process.getuid?.())}`)
  t.equal(fs.statSync(controlDir).mode & 0o777, 0o700, 'directory 0700')
  t.equal(fs.statSync(path.join(controlDir, `${p.pid}.sock`)).mode & 0o777, 0o600, 'socket 0600')
  t.equal(fs.statSync(path.join(controlDir, `${p.pid}.json`)).mode & 0o777, 0o600, 'info file 0600')

  const r = await prodserver(['status', '--json'], { env, cwd: os.tmpdir() })
  t.equal(r.code, 0, r.stderr)
  t.equal(JSON.parse(r.stdout).server.pid, p.pid)
})

t.test('several servers of one user: chosen by --port, by working directory, else a list', async (t) => {
  const dir = privateDir(t, 'prodserver-control-')
  const [portA, portB] = [await freePort(), await freePort()]
  const cwdA = privateDir(t, 'prodserver-app-a-')
  const cwdB = privateDir(t, 'prodserver-app-b-')
  const a = spawnServer(t, serveArgs(portA, dir), { cwd: cwdA })
  const b = spawnServer(t, serveArgs(portB, dir), { cwd: cwdB })
  await Promise.all([a.waitLine('control socket listening'), b.waitLine('control socket listening')])
  const pidOf = async (args: string[], cwd = ROOT): Promise<number> => JSON.parse((await prodserver(['status', '--json', '--control-dir', dir, ...args], { cwd })).stdout).server.pid
  const [byPortB, byPortA, fromA, fromB, neither] = await Promise.all([
    pidOf(['--port', String(portB)]), pidOf(['--port', String(portA)]), pidOf([], cwdA), pidOf([], cwdB),
    prodserver(['status', '--control-dir', dir])
  ])
  t.equal(byPortB, b.pid, '--port')
  t.equal(byPortA, a.pid)
  t.equal(fromA, a.pid, 'the working directory')
  t.equal(fromB, b.pid)

  t.equal(neither.code, 2)
  t.match(neither.stderr, new RegExp(`^prodserver: status: 2 servers are running \\(.*pid (${a.pid}|${b.pid}).*pid (${a.pid}|${b.pid}).*\\); choose one with --port or --unix-socket, or run from its working directory\\n$`))
  const wrongPort = await prodserver(['stop', '--control-dir', dir, '--port', '1'])
  t.equal(wrongPort.code, 3)
  t.match(wrongPort.stderr, /no running server listens on port 1; running: pid/)
  t.equal(a.exited(), undefined)
  t.equal(b.exited(), undefined)
})

t.test('two servers in one process (serve() called twice): each answers on its own socket', async (t) => {
  const dir = privateDir(t, 'prodserver-control-')
  const [portA, portB] = [await freePort(), await freePort()]
  const p = spawnServer(t, [path.join(ROOT, 'test', 'fixtures', 'two-servers.js'), String(portA), String(portB), dir])
  await p.waitLine('both listening')
  const [a, b] = await Promise.all([portA, portB].map(async (port) => JSON.parse((await prodserver(['status', '--json', '--control-dir', dir, '--port', String(port)])).stdout)))
  t.same(a.server.addresses, [`http://127.0.0.1:${portA}`])
  t.same(b.server.addresses, [`http://127.0.0.1:${portB}`])
  t.equal(a.server.pid, p.pid)
  t.equal(b.server.pid, p.pid)
  t.same(fs.readdirSync(dir).sort(), [`${p.pid}-1.json`, `${p.pid}-1.sock`, `${p.pid}.json`, `${p.pid}.sock`])
})

t.test('only the same user (or root) can use the control socket', async (t) => {
  const port = await freePort()
  const dir = privateDir(t, 'prodserver-control-')
  fs.chmodSync(dir, 0o755) // the parent is open; the control directory itself is what protects
  const controlDir = path.join(dir, 'control')
  const p = spawnServer(t, serveArgs(port, controlDir))
  await p.waitLine('control socket listening')
  const socket = path.join(controlDir, `${p.pid}.sock`)
  const info = path.join(controlDir, `${p.pid}.json`)

  // Another uid (nobody), on the same machine. Its stderr is dropped: it only holds tap's own
  // bookkeeping, which cannot write into the test directory as nobody.
  const probe = `
    const net = require('node:net'), fs = require('node:fs')
    const out = {}
    try { fs.readFileSync(${JSON.stringify(info)}); out.read = 'ok' } catch (e) { out.read = e.code }
    const s = net.connect(${JSON.stringify(socket)})
    s.on('connect', () => { out.connect = 'ok'; s.destroy(); console.log(JSON.stringify(out)) })
    s.on('error', (e) => { out.connect = e.code; console.log(JSON.stringify(out)) })`
  const other = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, ['-e', probe], { uid: 65534, gid: 65534, cwd: '/', env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.on('close', () => resolve(out))
  })
  t.same(JSON.parse(other), { read: 'EACCES', connect: 'EACCES' }, 'uid 65534 can neither read the token nor connect')

  // The same user without the token (e.g. a socket reached some other way) is refused too.
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(socket, () => s.write(JSON.stringify({ token: 'x'.repeat(43), command: 'stop' }) + '\n'))
    let out = ''
    s.setEncoding('utf8').on('data', (d: string) => { out += d }).on('close', () => resolve(out))
  })
  t.same(JSON.parse(reply), { ok: false, error: "not authorized (the token does not match this server's info file)" })
  t.equal(p.exited(), undefined, 'and it did not stop')
  t.equal((await prodserver(['status', '--json', '--control-dir', controlDir])).code, 0, 'its owner (root here) can')
})

t.test('a control directory that is not private: refused by the server and by the client', async (t) => {
  const dir = privateDir(t, 'prodserver-control-')
  const foreign = path.join(dir, 'foreign')
  fs.mkdirSync(foreign, { mode: 0o700 })
  fs.chownSync(foreign, 65534, 65534)
  const port = await freePort()
  const p = spawnServer(t, serveArgs(port, foreign))
  t.same(await p.waitExit(), { code: 2, signal: null }, 'boot refused, exit 2')
  t.match(p.stderr(), /^prodserver: control-dir="[^"]+" \(--control-dir\) cannot be used: control directory \S+ is owned by uid 65534, not by this process \(uid 0\); accepted: /m)

  const open = path.join(dir, 'open')
  fs.mkdirSync(open, { mode: 0o755 })
  fs.chmodSync(open, 0o755)
  const r = await prodserver(['status', '--control-dir', open])
  t.equal(r.code, 1)
  t.match(r.stderr, /^prodserver: status: control directory \S+ has permissions 0755, readable by other users; not trusted \(accepted: 0700\)\n$/)
})
