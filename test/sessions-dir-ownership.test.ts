/**
 * The session directory and its shards are ours, or they are not used (issue 10): a local user who
 * creates the predictable default directory (and world-writable shards) before a root server
 * starts gets nothing — the server works in a fresh private directory instead, shared by its
 * workers — and an explicit SESSION_DIR that is not ours fails the boot with one line naming it.
 *
 * Real processes: the attacker is a process running as `nobody`; the server runs as root (the
 * tests run as root, here and in CI: the old code exempted root from the owner check).
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { spawnServer, freePort, get, CLI, FIXTURES, type ServerProcess } from './helpers/process'
import { Client, SECRET_A } from './fixtures/sessions-helpers'
import { defaultSessionDir } from '../lib/sessions/stores/file/default-dir'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { ForeignDirectoryError } from '../lib/sessions/stores/file/dir'
import { SHARD_NAMES, shardOf } from '../lib/sessions/stores/file/paths'

const NOBODY = 65534
const APP = path.join(FIXTURES, 'sessions-app.js')

if (process.getuid?.() !== 0) t.fail('these tests must run as root (the attacker runs as nobody, the server as root); CI does')

/** Runs `script` (JavaScript) as nobody; returns its stdout. Throws with its stderr when it fails. */
function asNobody (script: string, ...args: string[]): string {
  const run = spawnSync(process.execPath, ['-e', script, ...args], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 20_000 })
  if (run.status !== 0) throw new Error(`as nobody: ${run.stderr}`)
  return run.stdout
}

/** An application directory of its own, so its default session directory is unique to this test. */
function appDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-app-'))
  fs.chmodSync(dir, 0o755)
  const taken = defaultSessionDir(dir)
  t.teardown(() => {
    fs.rmSync(dir, { recursive: true, force: true })
    for (const name of fs.readdirSync(os.tmpdir())) {
      if (name === path.basename(taken) || name.startsWith(`${path.basename(taken)}-`)) fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true })
    }
  })
  return dir
}

/** nobody creates the default directory and every shard, 0777, as in the issue. */
function squat (dir: string): void {
  asNobody(`
    const fs = require('fs'), path = require('path')
    const [dir, ...shards] = process.argv.slice(1)
    fs.mkdirSync(dir, { mode: 0o777 }); fs.chmodSync(dir, 0o777)
    for (const s of shards) { fs.mkdirSync(path.join(dir, s)); fs.chmodSync(path.join(dir, s), 0o777) }
  `, dir, ...SHARD_NAMES)
}

/** The session id inside a signed cookie value (what the attacker knows of his own session). */
function idOf (c: Client): string {
  const value = decodeURIComponent(c.jar.get('sessionId') ?? '')
  return value.slice(0, value.lastIndexOf('.'))
}

async function serveIn (t: Test, cwd: string, extra: string[], env: Record<string, string> = {}): Promise<{ p: ServerProcess, url: string, port: number }> {
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, '--host', '127.0.0.1', '--port', String(port), ...extra], {
    cwd,
    env: { SESSION_STORE: 'file', SESSION_SECRET: SECRET_A, SESSION_DIR: '', PRODSERVER_SESSION_DIR: '', PRODSERVER_INTERNAL_SESSION_DIR: '', ...env }
  })
  await p.waitLine((l) => l.msg === 'listening' || l.msg === 'cluster ready' || /all workers ready/.test(String(l.msg)), 30_000)
  return { p, url: `http://127.0.0.1:${port}`, port }
}

async function forgeryFails (t: Test, url: string, taken: string): Promise<void> {
  const mallory = new Client(url)
  t.equal((await mallory.post('/login?name=mallory')).status, 200, 'the attacker logs in as himself')
  const id = idOf(mallory)
  const listed = asNobody(`
    const fs = require('fs'), path = require('path'); const dir = process.argv[1]
    console.log(JSON.stringify(fs.readdirSync(dir).flatMap((s) => { try { return fs.readdirSync(path.join(dir, s)) } catch { return [] } })))
  `, taken)
  t.same(JSON.parse(listed), [], 'the squatted directory holds no session of the server: nothing to list, read or delete')
  // The forgery of the issue: a record of his own session saying he is admin, in every shard.
  asNobody(`
    const fs = require('fs'), path = require('path'); const [dir, id, shards] = process.argv.slice(1)
    const json = JSON.stringify({ user: 'admin', cookie: { originalMaxAge: 86400000 } })
    const record = 'fps1 ' + Buffer.byteLength(json) + '\\n' + json
    const future = Date.now() / 1000 + 3600
    for (const s of shards.split(',')) { const f = path.join(dir, s, id + '.json'); fs.writeFileSync(f, record); fs.utimesSync(f, future, future) }
  `, taken, id, SHARD_NAMES.join(','))
  for (let i = 0; i < 4; i++) {
    t.match((await mallory.get('/whoami')).body, { user: 'mallory' }, 'the forged record is never read: still mallory')
  }
  t.ok(fs.existsSync(path.join(taken, shardOf(id), `${id}.json`)), '(the forged file is there, unused)')
}

/** The private directory the server uses instead, from its warning. */
function freshDirFrom (p: ServerProcess, taken: string): string {
  const warning = p.lines.find((l) => String(l.msg).startsWith(`sessions: the default session directory ${taken} cannot be used`))
  const fresh = /using a new private directory (\S+) instead/.exec(String(warning?.msg))?.[1]
  if (fresh === undefined) throw new Error(`no fallback warning in:\n${p.stdout()}`)
  return fresh
}

function assertPrivate (t: Test, fresh: string, taken: string): void {
  t.ok(fresh.startsWith(`${taken}-`), 'next to the taken one, with a random suffix')
  const st = fs.lstatSync(fresh)
  t.ok(st.isDirectory() && !st.isSymbolicLink(), 'a real directory')
  t.equal(st.uid, 0, 'owned by root, the server')
  t.equal((st.mode & 0o777).toString(8), '700', '0700')
  t.throws(() => asNobody("require('fs').readdirSync(process.argv[1])", fresh), /EACCES/, 'nobody cannot even list it')
  t.ok(fs.readdirSync(fresh).some((s) => fs.readdirSync(path.join(fresh, s)).some((n) => n.endsWith('.json'))), 'the sessions are there')
}

t.test('single process: nobody pre-creates the default directory; the root server uses a private one and a forged session is never accepted', async (t) => {
  const cwd = appDir(t)
  const taken = defaultSessionDir(cwd)
  squat(taken)
  const { p, url } = await serveIn(t, cwd, [])
  const warnings = p.lines.filter((l) => /cannot be used/.test(String(l.msg)))
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0].msg, `sessions: the default session directory ${taken} cannot be used (it is owned by uid ${NOBODY}, not by this process's uid 0; another local user may have created it); using a new private directory`)
  await forgeryFails(t, url, taken)
  assertPrivate(t, freshDirFrom(p, taken), taken)
})

t.test('cluster of 2: the primary makes one private directory for both workers, so they still share sessions', async (t) => {
  const cwd = appDir(t)
  const taken = defaultSessionDir(cwd)
  squat(taken)
  const { p, url, port } = await serveIn(t, cwd, ['--workers', '2'])
  await p.waitLines('worker ready', 2, 30_000)
  const warnings = p.lines.filter((l) => /cannot be used/.test(String(l.msg)))
  t.equal(warnings.length, 1, 'one warning, from the primary')
  t.match(warnings[0].msg, /shared by the workers of this server until it stops/)
  await forgeryFails(t, url, taken)
  const alice = new Client(url)
  await alice.post('/login?name=alice')
  const pids = new Set<number>()
  for (let i = 0; i < 8; i++) {
    // A new connection each time: the requests land on both workers.
    const r = await get(port, '/whoami', false)
    pids.add(r.json.pid)
  }
  const answers = await Promise.all(Array.from({ length: 8 }, async () => await fetch(`${url}/whoami`, { headers: { cookie: `sessionId=${alice.jar.get('sessionId')}`, connection: 'close' } }).then(async (r) => await r.json() as { pid: number, user: string })))
  t.ok(answers.every((a) => a.user === 'alice'), 'every worker sees the login')
  t.equal(new Set([...pids, ...answers.map((a) => a.pid)]).size, 2, 'two workers answered')
  assertPrivate(t, freshDirFrom(p, taken), taken)
})

t.test('an explicit SESSION_DIR owned by another user fails the boot with one line naming SESSION_DIR', async (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-dir-'))
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }))
  const dir = path.join(base, 'sessions')
  fs.mkdirSync(dir, { mode: 0o700 })
  fs.chownSync(dir, NOBODY, NOBODY)
  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, '--host', '127.0.0.1', '--port', String(port)], { env: { SESSION_STORE: 'file', SESSION_SECRET: SECRET_A, SESSION_DIR: dir } })
  const exit = await p.waitExit(20_000)
  t.not(exit.code, 0, 'the boot fails')
  const first = p.stderr().split('\n')[0]
  t.equal(first, `prodserver: SESSION_DIR=${dir} cannot be used: it is owned by uid ${NOBODY}, not by this process's uid 0; accepted: a directory owned by this process's user, not a symbolic link, writable by that user only (chmod 700), or a path that does not exist yet (it is created 0700)`)
  t.same(fs.readdirSync(dir), [], 'nothing was written into it')
})

t.test('what is not ours is refused, naming the setting and saying why; a directory others may only read is tightened', async (t) => {
  const base = t.testdir()
  const open = (dir: string): FileSessionStore => new FileSessionStore({ dir, reapIntervalMs: 0 })
  const refused = (dir: string, reason: RegExp): void => {
    let err: unknown
    try { open(dir).close().catch(() => {}) } catch (e) { err = e }
    t.ok(err instanceof ForeignDirectoryError, `${path.basename(dir)}: refused`)
    t.match((err as Error)?.message, reason)
  }

  const elsewhere = path.join(base, 'elsewhere')
  fs.mkdirSync(elsewhere, { mode: 0o700 })
  fs.symlinkSync(elsewhere, path.join(base, 'link'))
  refused(path.join(base, 'link'), /^SESSION_DIR=\S+link cannot be used: it is a symbolic link; accepted: /)
  t.same(fs.readdirSync(elsewhere), [], 'nothing created through the link')

  const open777 = path.join(base, 'world-writable')
  fs.mkdirSync(open777)
  fs.chmodSync(open777, 0o777)
  refused(open777, /cannot be used: its mode 0777 lets other users write into it/)

  const shardTaken = path.join(base, 'shard-taken')
  fs.mkdirSync(shardTaken, { mode: 0o700 })
  fs.mkdirSync(path.join(shardTaken, '7'), { mode: 0o700 })
  fs.chownSync(path.join(shardTaken, '7'), NOBODY, NOBODY)
  refused(shardTaken, new RegExp(`^SESSION_DIR=${shardTaken}/7 cannot be used: it is owned by uid ${NOBODY}`))

  const shardLinked = path.join(base, 'shard-linked')
  fs.mkdirSync(shardLinked, { mode: 0o700 })
  fs.symlinkSync(elsewhere, path.join(shardLinked, 'c'))
  refused(shardLinked, /shard-linked\/c cannot be used: it is a symbolic link/)
  t.same(fs.readdirSync(elsewhere), [], 'nothing written through the shard link')

  const readable = path.join(base, 'readable')
  fs.mkdirSync(readable)
  fs.chmodSync(readable, 0o755)
  const warnings: string[] = []
  const store = new FileSessionStore({ dir: readable, reapIntervalMs: 0, log: { warn: (m) => warnings.push(m) } })
  t.teardown(() => store.close())
  t.equal((fs.statSync(readable).mode & 0o777).toString(8), '700', 'a 0755 directory of ours is tightened')
  t.match(warnings, [/had permissions 0755; tightened to 0700/])
})
