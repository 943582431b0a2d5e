/**
 * The file store's record lock (lib/sessions/stores/file/record-lock.ts): patches from several
 * processes on one directory all land; a lock left by a process that died (nobody has it open) is
 * broken at once, and the record it held never published; a lock held open by a live process
 * makes a save wait at most the store timeout, then fail; a lock nobody releases is broken once it
 * is older than any live holder can be; an earlier version's pid locks are judged by their pid; a
 * holder stalled past its lease never removes or spoils the next holder's lock; a symlink in its
 * place is never followed; the reaper removes orphaned locks.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { sessionPaths } from '../lib/sessions/stores/file/paths'
import { reapDirectory } from '../lib/sessions/stores/reaper'
import { lockRecord, type HeldLock } from '../lib/sessions/stores/file/record-lock'
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

type Tap = Parameters<Parameters<typeof t.test>[1]>[0]

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

/** A process that creates `lock` as a writer does (O_EXCL) and keeps it open until killed. */
async function holdOpen (t: Tap, lock: string, content = ''): Promise<ReturnType<typeof spawn>> {
  const holder = spawn(process.execPath, ['-e', `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(lock)}, 'wx', 0o600); fs.writeSync(fd, ${JSON.stringify(content)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000)`])
  t.teardown(() => { holder.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on('data', (d) => { if (String(d).includes('held')) resolve() })
    holder.on('exit', (code) => reject(new Error(`lock holder exited ${code}`)))
  })
  return holder
}

async function kill (holder: ReturnType<typeof spawn>): Promise<void> {
  const gone = new Promise((resolve) => holder.on('exit', resolve))
  holder.kill('SIGKILL')
  await gone
}

/** A session saved as alice, in a store with `timeoutMs`, and the path of its lock. */
async function aliceIn (t: Tap, timeoutMs: number): Promise<{ store: FileSessionStore, id: string, lock: string }> {
  const store = storeIn(t, freshDir(), timeoutMs)
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  return { store, id, lock: sessionPaths(store.dir, id).lock }
}

/** The lock is broken at once: the save lands well within the (1000 ms) timeout. */
async function savesAtOnce (t: Tap, store: FileSessionStore, id: string): Promise<void> {
  const started = Date.now()
  t.equal(await store.patch(id, patch('cart', [1]), 60_000), 'applied')
  t.ok(Date.now() - started < 1000, `saved in ${Date.now() - started} ms (well within the 1000 ms timeout)`)
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice', cart: [1] })
}

/** The lock is respected: the save waits about the (300 ms) timeout, fails, and writes nothing. */
async function waitsThenFails (t: Tap, store: FileSessionStore, id: string): Promise<void> {
  const started = Date.now()
  await t.rejects(store.patch(id, patch('cart', [1]), 60_000), { code: 'ETIMEDOUT' })
  const waited = Date.now() - started
  t.ok(waited >= 250 && waited < 300 + 1500, `gave up after ${waited} ms (timeout 300 ms)`)
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice' }, 'nothing written')
}

t.test('a lock whose holder died (nobody has the file open) is broken at once', async (t) => {
  const { store, id, lock } = await aliceIn(t, 1000)
  await kill(await holdOpen(t, lock))
  await savesAtOnce(t, store, id)
})

t.test('a lock held open by a live process: the save waits at most the timeout, fails, and writes nothing; once its holder dies, saves work at once', async (t) => {
  const { store, id, lock } = await aliceIn(t, 300)
  const holder = await holdOpen(t, lock)
  await waitsThenFails(t, store, id)
  await kill(holder)
  t.equal(await store.patch(id, patch('cart', [1]), 60_000), 'applied', 'its holder died: saves work again')
})

t.test('a lock left by an earlier version (its owner\'s pid inside) whose process died is broken at once', async (t) => {
  const { store, id, lock } = await aliceIn(t, 1000)
  fs.writeFileSync(lock, String(deadPid()), { mode: 0o600 })
  await savesAtOnce(t, store, id)
})

t.test('an earlier version\'s lock held by a live process (its pid inside): the save waits at most the timeout, fails, and writes nothing', async (t) => {
  const { store, id, lock } = await aliceIn(t, 300)
  fs.writeFileSync(lock, String(process.pid), { mode: 0o600 })
  await waitsThenFails(t, store, id)
  fs.unlinkSync(lock)
  t.equal(await store.patch(id, patch('cart', [1]), 60_000), 'applied', 'released: saves work again')
})

/** A lock only its age can break (timeout 100 ms): refused while young, broken after 2 × 100 ms + 1 s. */
async function brokenOnceOld (t: Tap, store: FileSessionStore, id: string, lock: string): Promise<void> {
  const createdAt = fs.statSync(lock).ctimeMs
  await t.rejects(store.patch(id, patch('early', 1), 60_000), { code: 'ETIMEDOUT' }, 'young: respected')
  while (Date.now() - createdAt <= 2 * 100 + 1000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await store.patch(id, patch('late', 1), 60_000), 'applied', 'old: broken')
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice', late: 1 })
}

t.test('a lock nobody releases is broken once older than a live holder can be (2 × timeout + 1 s)', async (t) => {
  const { store, id, lock } = await aliceIn(t, 100)
  fs.writeFileSync(lock, String(process.pid), { mode: 0o600 }) // an earlier version's, with a live pid: only its age can tell
  await brokenOnceOld(t, store, id, lock)
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

t.test('a lock whose holder died after writing the record into it is broken, and that record never published', async (t) => {
  const store = storeIn(t, freshDir())
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  await kill(await holdOpen(t, sessionPaths(store.dir, id).lock, 'fps1 25\n{"user":"alice","half":1}'))
  t.equal(await store.patch(id, patch('late', 1), 60_000), 'applied')
  t.same(JSON.parse((await store.get(id))?.json ?? '{}'), { user: 'alice', late: 1 }, 'the dead holder\'s record was never published')
})

t.test('a lock still held open is broken once older than a live holder can be (a holder /proc cannot see: another pid namespace)', async (t) => {
  const { store, id, lock } = await aliceIn(t, 100)
  await holdOpen(t, lock) // live and holding it open: only its age breaks it
  await brokenOnceOld(t, store, id, lock)
})

/** A session's lock taken by `stalled`, broken by a waiter (record-lock.ts: rename aside, unlink), then taken by `next`. */
async function takenOver (t: Tap): Promise<{ lock: string, record: string, stalled: HeldLock, next: HeldLock }> {
  const dir = freshDir()
  storeIn(t, dir) // makes the directory and its shards
  const { lock, record } = sessionPaths(path.resolve(dir), newSessionId())
  const stalled = await lockRecord(lock, 100)
  fs.renameSync(lock, `${lock}.aside`)
  fs.unlinkSync(`${lock}.aside`)
  const next = await lockRecord(lock, 100)
  return { lock, record, stalled, next }
}

function writeInto (lock: HeldLock, text: string): void {
  const data = Buffer.from(text)
  fs.writeSync(lock.fd, data, 0, data.length, 0)
}

t.test('a holder stalled past its lease never removes or overwrites the lock of the holder that took over', async (t) => {
  const { lock, record, stalled, next } = await takenOver(t)
  t.throws(() => { while (true) stalled.assertHeld() }, { code: 'ETIMEDOUT' }, 'the stalled holder sees its lease is over')
  await stalled.release()
  t.ok(fs.existsSync(lock), 'its release left the new holder\'s lock in place')
  writeInto(next, 'fps1 2\n{}')
  await next.publish(record)
  t.equal(fs.readFileSync(record, 'utf8'), 'fps1 2\n{}', 'the new holder published its record')
  t.notOk(fs.existsSync(lock), 'and released the lock by doing so')
  fs.closeSync(next.fd)
})

t.test('a holder that stalls between its lease check and its rename publishes the next holder\'s file, which still ends as that holder\'s record', async (t) => {
  const { lock, record, stalled, next } = await takenOver(t)
  await stalled.publish(record) // renames the lock name — the next holder's file by now
  fs.closeSync(stalled.fd)
  writeInto(next, 'fps1 9\n{"n":"b"}')
  await t.resolves(next.publish(record), 'the next holder\'s publish finds its file already in place')
  t.equal(fs.readFileSync(record, 'utf8'), 'fps1 9\n{"n":"b"}', 'the record is what the next holder wrote')
  t.notOk(fs.existsSync(lock), 'no lock left')
  fs.closeSync(next.fd)
})

t.test('a live lock a waiter moves aside for an instant (taking it for abandoned) is published once linked back', async (t) => {
  const dir = freshDir()
  storeIn(t, dir)
  const { lock, record } = sessionPaths(path.resolve(dir), newSessionId())
  const holder = await lockRecord(lock, 1000)
  writeInto(holder, 'fps1 9\n{"n":"a"}')
  fs.renameSync(lock, `${lock}.aside`) // the waiter's move; it sees it moved a live lock and links it back
  const publishing = holder.publish(record)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(fs.existsSync(record), 'not published while its name is gone')
  fs.linkSync(`${lock}.aside`, lock)
  fs.unlinkSync(`${lock}.aside`)
  await t.resolves(publishing, 'published once back')
  t.equal(fs.readFileSync(record, 'utf8'), 'fps1 9\n{"n":"a"}')
  t.notOk(fs.existsSync(lock), 'no lock left')
  fs.closeSync(holder.fd)
})
