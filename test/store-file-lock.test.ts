/**
 * The file store's record lock (lib/sessions/stores/file/record-lock.ts): patches from several
 * processes on one directory all land; a lock left by a process that died is broken at once; a lock
 * held by a live process makes a save wait at most the store timeout, then fail; a lock nobody
 * releases is broken once it is older than any live holder can be; a symlink in its place is never
 * followed; the reaper removes orphaned locks.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { sessionPaths } from '../lib/sessions/stores/file/paths'
import { reapDirectory } from '../lib/sessions/stores/reaper'
import { newSessionId } from './helpers/store-contract'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'store-file-lock-'))
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const freshDir = (): string => path.join(root, `d${n++}`)

function storeIn (t: Parameters<Parameters<typeof t.test>[1]>[0], dir: string, timeoutMs = 1000): FileSessionStore {
  const store = new FileSessionStore({ dir, reapIntervalMs: 0, timeoutMs })
  t.teardown(() => store.close())
  return store
}

const patch = (name: string, value: unknown) => ({ set: [[name, JSON.stringify(value)] as const], unset: [] })

/** A pid that belonged to a process which has exited. */
function deadPid (): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(r.stdout)
}

t.test('4 processes × 60 patches of one session, each adding its own member: all 240 land', async (t) => {
  const dir = freshDir()
  const store = storeIn(t, dir)
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  const fixture = path.join(__dirname, 'fixtures', 'store-patcher.js')
  const runs = await Promise.all([0, 1, 2, 3].map(async (w) => await new Promise<{ code: number | null, out: string, err: string }>((resolve) => {
    const child = spawn(process.execPath, [fixture, dir, id, String(w), '60'])
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += String(d) })
    child.stderr.on('data', (d) => { err += String(d) })
    child.on('exit', (code) => resolve({ code, out, err }))
  })))
  for (const r of runs) {
    t.equal(r.code, 0, r.err)
    t.same(JSON.parse(r.out), { applied: 60 }, 'every patch applied')
  }
  const members = JSON.parse((await store.get(id))?.json ?? '{}')
  const missing = [0, 1, 2, 3].flatMap((w) => Array.from({ length: 60 }, (_, i) => `w${w}_${i}`)).filter((k) => !(k in members))
  t.same(missing, [], 'no member lost')
  t.equal(members.user, 'alice')
  t.same(fs.readdirSync(path.dirname(sessionPaths(store.dir, id).lock)).filter((f) => f.endsWith('.lock')), [], 'no lock left behind')
})

t.test('a lock left by a process that died is broken at once', async (t) => {
  const store = storeIn(t, freshDir())
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  fs.writeFileSync(sessionPaths(store.dir, id).lock, String(deadPid()), { mode: 0o600 })
  const started = Date.now()
  t.equal(await store.patch(id, patch('cart', [1]), 60_000), 'applied')
  t.ok(Date.now() - started < 1000, `saved in ${Date.now() - started} ms (well within the 1000 ms timeout)`)
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice', cart: [1] })
})

t.test('a lock held by a live process: the save waits at most the timeout, fails, and writes nothing', async (t) => {
  const store = storeIn(t, freshDir(), 300)
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  const lock = sessionPaths(store.dir, id).lock
  fs.writeFileSync(lock, String(process.pid), { mode: 0o600 })
  const started = Date.now()
  await t.rejects(store.patch(id, patch('cart', [1]), 60_000), { code: 'ETIMEDOUT' })
  const waited = Date.now() - started
  t.ok(waited >= 250 && waited < 300 + 1500, `gave up after ${waited} ms (timeout 300 ms)`)
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice' }, 'nothing written')
  fs.unlinkSync(lock)
  t.equal(await store.patch(id, patch('cart', [1]), 60_000), 'applied', 'released: saves work again')
})

t.test('a lock nobody releases is broken once older than a live holder can be (2 × timeout + 1 s)', async (t) => {
  const store = storeIn(t, freshDir(), 100)
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  const lock = sessionPaths(store.dir, id).lock
  fs.writeFileSync(lock, String(process.pid), { mode: 0o600 }) // a live pid: only its age can tell
  const createdAt = fs.statSync(lock).ctimeMs
  await t.rejects(store.patch(id, patch('early', 1), 60_000), { code: 'ETIMEDOUT' }, 'young: respected')
  while (Date.now() - createdAt <= 2 * 100 + 1000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await store.patch(id, patch('late', 1), 60_000), 'applied', 'old: broken')
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice', late: 1 })
})

t.test('a symlink where the lock goes is never followed; the reaper removes orphaned locks', async (t) => {
  const store = storeIn(t, freshDir(), 200)
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  const outside = path.join(root, `outside-${n++}`)
  fs.writeFileSync(outside, 'precious')
  const lock = sessionPaths(store.dir, id).lock
  fs.symlinkSync(outside, lock)
  await t.rejects(store.patch(id, patch('cart', [1]), 60_000), 'the save fails (a 503 for that request)')
  t.equal(fs.readFileSync(outside, 'utf8'), 'precious', 'the link target is untouched')
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice' })

  const other = newSessionId()
  fs.writeFileSync(sessionPaths(store.dir, other).lock, String(deadPid()), { mode: 0o600 })
  const young = await reapDirectory(store.dir)
  t.ok(fs.existsSync(sessionPaths(store.dir, other).lock), `a young lock may be held: kept (${JSON.stringify(young)})`)
  const old = await reapDirectory(store.dir, { now: Date.now() + 120_000 })
  t.notOk(fs.existsSync(sessionPaths(store.dir, other).lock), 'an orphaned lock is reaped after a minute')
  // Issue 10: a link where our file should be is foreign — counted, never followed, never deleted.
  t.ok(fs.lstatSync(lock).isSymbolicLink(), 'the planted link is left alone (foreign)')
  t.ok(old.foreign >= 1, `and counted as foreign (${JSON.stringify(old)})`)
  t.equal(fs.readFileSync(outside, 'utf8'), 'precious', 'its target is untouched')
})
