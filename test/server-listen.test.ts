/**
 * backlog, unix sockets (stale file, live socket, regular file, perms) and several listen addresses.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import net from 'node:net'
import path from 'node:path'
import { execFileSync, spawnSync } from 'node:child_process'
import { startServer } from '../lib/server/index'
import { makePlan, start, request, sleep } from './fixtures/server-helpers'

const app = async (fastify: any): Promise<void> => {
  fastify.get('/', async () => ({ hello: 'world' }))
  fastify.get('/slow', async () => { await sleep(300); return { slow: true } })
}

function tmpDir (t: { teardown (fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-listen-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function unixPlan (socketPath: string, perms = 0o600) {
  return makePlan({}, {}, { kind: 'unix', path: socketPath, perms, backlog: 1024 })
}

t.test('backlog reaches listen(): the kernel listen queue has that size', async (t) => {
  const s = await start(t, makePlan({ backlog: 17 }), app)
  const out = execFileSync('ss', ['-ltnH', `sport = :${s.port}`], { encoding: 'utf8' })
  // LISTEN <Recv-Q> <Send-Q = backlog> <local> <peer>
  const cols = out.trim().split(/\s+/)
  t.equal(cols[0], 'LISTEN')
  t.equal(cols[2], '17', 'Send-Q of a listening socket is its backlog')
})

t.test('unix socket: a stale socket file is removed and the mode defaults to 600', async (t) => {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'app.sock')
  // A server that died without unlinking (SIGKILL) leaves its socket file behind.
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`])
  t.ok(fs.lstatSync(sock).isSocket(), 'a stale socket file exists')
  const s = await start(t, unixPlan(sock), app)
  t.same(s.addresses, [sock])
  t.equal(fs.statSync(sock).mode & 0o777, 0o600, 'perms 600 applied after listen')
  const r = await request({ socketPath: sock, path: '/' })
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { hello: 'world' })
})

t.test('unix socket: custom perms are applied', async (t) => {
  const sock = path.join(tmpDir(t), 'app.sock')
  await start(t, unixPlan(sock, 0o660), app)
  t.equal(fs.statSync(sock).mode & 0o777, 0o660)
})

t.test('unix socket: a live socket of another server is never taken over', async (t) => {
  const sock = path.join(tmpDir(t), 'app.sock')
  // (our liveness probe connects and hangs up at once: that socket's reset is expected)
  const other = net.createServer((c) => { c.on('error', () => {}); c.end('other\n') })
  await new Promise<void>((resolve) => other.listen(sock, resolve))
  t.teardown(() => other.close())
  await t.rejects(startServer(unixPlan(sock), { app, fastifyOptions: { logger: false } }), {
    name: 'ServerStartError',
    message: /^unix-socket .*app\.sock is in use by another server; stop it or choose another path$/
  })
  const reply = await new Promise<string>((resolve) => {
    const c = net.connect(sock)
    let d = ''
    c.on('data', (x) => { d += String(x) })
    c.on('close', () => resolve(d))
  })
  t.equal(reply, 'other\n', 'the other server still owns its socket')
})

t.test('unix socket: a regular file at the path is refused, not deleted', async (t) => {
  const file = path.join(tmpDir(t), 'app.sock')
  fs.writeFileSync(file, 'precious')
  const err = await startServer(unixPlan(file), { app, fastifyOptions: { logger: false } }).then(() => null, (e: Error) => e)
  t.match(err?.message, /exists and is not a socket; refusing to remove it$/)
  t.notMatch(err?.message ?? '', /\n/, 'one line')
  t.equal(fs.readFileSync(file, 'utf8'), 'precious')
})

t.test('listen list: one server answers on every address, with one connection limit', async (t) => {
  let running = 0
  let max = 0
  const counting = async (fastify: any): Promise<void> => {
    fastify.get('/', async (req: any) => {
      running++
      max = Math.max(max, running)
      await sleep(200)
      running--
      return { port: req.socket.localPort }
    })
  }
  const plan = makePlan({ connectionLimit: 1 }, {}, {
    kind: 'tcp',
    addresses: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }],
    backlog: 64
  })
  const s = await start(t, plan, counting)
  t.equal(s.addresses.length, 2)
  const ports = s.addresses.map((a) => Number(new URL(a).port))
  t.not(ports[0], ports[1])
  const replies = await Promise.all([...ports, ...ports].map((port) => request({ port, path: '/' })))
  t.same(replies.map((r) => r.status), [200, 200, 200, 200], 'both addresses answer')
  t.same(replies.map((r) => JSON.parse(r.body).port), [...ports, ...ports], 'each on its own port')
  t.equal(max, 1, 'the connection limit is shared by all addresses')
  t.equal(s.requestCount(), 4, 'one request count for the process')
  const out = execFileSync('ss', ['-ltnH', `sport = :${ports[1]}`], { encoding: 'utf8' })
  t.equal(out.trim().split(/\s+/)[2], '64', 'extra addresses get the backlog too')
})
