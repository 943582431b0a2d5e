/**
 * --pid-file, as an init system uses it: written at start with the server's pid, removed at exit,
 * a second server refused while the first runs, leftovers of a killed server replaced, and never
 * a write through a symlink or over a file that is not a pid file.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { spawnServer, freePort, get, APP } from './helpers/process'
import { prodserver, PRODSERVER } from './helpers/cli'

function scratch (t: { teardown (fn: () => unknown): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-pidfile-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function serveArgs (port: number, dir: string, pidFile: string, extra: string[] = []): string[] {
  return [PRODSERVER, 'serve', APP, '--host', '127.0.0.1', '--port', String(port), '--pid-file', pidFile,
    '--control-dir', path.join(dir, 'control'), '--graceful-timeout', '3s', ...extra]
}

t.test('cluster: the primary\'s pid while it runs, removed when it stops; a second server is refused', async (t) => {
  const dir = scratch(t)
  const pidFile = path.join(dir, 'app.pid')
  const port = await freePort()
  const p = spawnServer(t, serveArgs(port, dir, pidFile, ['--workers', '2']))
  await p.waitLine('all workers ready')
  t.equal(fs.readFileSync(pidFile, 'utf8'), `${p.pid}\n`, 'the primary\'s pid')
  t.equal(fs.statSync(pidFile).mode & 0o777, 0o644)

  const second = spawnServer(t, serveArgs(await freePort(), dir, pidFile, ['--workers', '2']))
  t.same(await second.waitExit(), { code: 2, signal: null }, 'refused with exit 2')
  t.equal(second.stderr(), `prodserver: pid-file=${JSON.stringify(pidFile)} (--pid-file) holds pid ${p.pid}, which is running; accepted: the pid file of no running server (stop it first: prodserver stop, or kill ${p.pid})\n`)
  t.equal(second.lines.filter((l) => l.msg === 'worker started').length, 0, 'before forking anything')
  t.equal(fs.readFileSync(pidFile, 'utf8'), `${p.pid}\n`, 'the first server\'s file is untouched')
  t.equal((await get(port, '/')).status, 200, 'and it keeps serving')

  const stop = await prodserver(['stop', '--control-dir', path.join(dir, 'control')])
  t.equal(stop.code, 0, stop.stderr)
  t.same(await p.waitExit(), { code: 0, signal: null })
  t.notOk(fs.existsSync(pidFile), 'removed at exit')
})

t.test('single mode: written at start, removed on SIGTERM', async (t) => {
  const dir = scratch(t)
  const pidFile = path.join(dir, 'single.pid')
  const p = spawnServer(t, serveArgs(await freePort(), dir, pidFile))
  await p.waitLine('listening')
  t.equal(fs.readFileSync(pidFile, 'utf8'), `${p.pid}\n`)
  p.signal('SIGTERM')
  t.same(await p.waitExit(), { code: 0, signal: null })
  t.notOk(fs.existsSync(pidFile))
})

t.test('leftovers: a dead pid, or a pid reused by another program, is overwritten with a warning', async (t) => {
  const dir = scratch(t)
  const pidFile = path.join(dir, 'app.pid')

  // The pid of a process that has exited (a server killed with SIGKILL leaves such a file).
  const gone = spawn('true')
  const gonePid = gone.pid as number
  await new Promise((resolve) => gone.on('exit', resolve))
  fs.writeFileSync(pidFile, `${gonePid}\n`)
  const a = spawnServer(t, serveArgs(await freePort(), dir, pidFile))
  await a.waitLine('listening')
  t.equal(fs.readFileSync(pidFile, 'utf8'), `${a.pid}\n`)
  const warned = a.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('pid-file '))
  t.equal(warned?.msg, `pid-file ${pidFile} held pid ${gonePid}, which is not running (left by a server that was killed): overwritten`)
  a.signal('SIGTERM')
  await a.waitExit()

  // After a reboot the pid may belong to something else entirely.
  const sleeper = spawn('sleep', ['30'])
  t.teardown(() => sleeper.kill('SIGKILL'))
  fs.writeFileSync(pidFile, `${String(sleeper.pid)}\n`)
  const b = spawnServer(t, serveArgs(await freePort(), dir, pidFile))
  await b.waitLine('listening')
  t.equal(fs.readFileSync(pidFile, 'utf8'), `${b.pid}\n`)
  t.ok(b.lines.some((l) => l.msg === `pid-file ${pidFile} held pid ${String(sleeper.pid)}, now a process that is not Node (the pid was reused): overwritten`))
})

t.test('never through a symlink, never over a file that is not a pid file', async (t) => {
  const dir = scratch(t)
  const precious = path.join(dir, 'precious.conf')
  fs.writeFileSync(precious, 'listen 80;\n')

  const p = spawnServer(t, serveArgs(await freePort(), dir, precious))
  t.same(await p.waitExit(), { code: 2, signal: null })
  t.equal(p.stderr(), `prodserver: pid-file=${JSON.stringify(precious)} (--pid-file) exists and is not a pid file (it holds something other than a pid); accepted: a pid file, or a path that does not exist yet\n`)
  t.equal(fs.readFileSync(precious, 'utf8'), 'listen 80;\n', 'untouched')

  const link = path.join(dir, 'app.pid')
  fs.symlinkSync(path.join(dir, 'elsewhere.pid'), link)
  const q = spawnServer(t, serveArgs(await freePort(), dir, link))
  t.same(await q.waitExit(), { code: 2, signal: null })
  t.match(q.stderr(), /^prodserver: pid-file="[^"]+" \(--pid-file\) is a symlink; accepted: a regular file path/)
  t.notOk(fs.existsSync(path.join(dir, 'elsewhere.pid')), 'nothing written where it points')

  const nodir = spawnServer(t, serveArgs(await freePort(), dir, path.join(dir, 'missing', 'app.pid')))
  t.same(await nodir.waitExit(), { code: 2, signal: null })
  t.match(nodir.stderr(), /^prodserver: pid-file="[^"]+" \(--pid-file\) cannot be written: ENOENT.*; accepted: a path in an existing directory this user can write\n$/)
})
