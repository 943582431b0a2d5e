/**
 * No symlink is ever followed inside the session directory (issue 10: a record symlinked elsewhere
 * was read through, and a touch moved its target's mtime by 23 h; a shard symlinked elsewhere got
 * new records written into it, and the reaper deleted an unrelated file there). Links are planted
 * where a record, a tombstone, a shard and the reaper's stamp should be; their targets' content
 * and mtime are checked afterwards. Real files, the real store and reaper.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { reapDirectory } from '../lib/sessions/stores/reaper'
import { sessionPaths, shardOf } from '../lib/sessions/stores/file/paths'
import { encodeRecord } from '../lib/sessions/stores/file/envelope'
import { newSessionId } from './helpers/store-contract'

const HOUR = 3600

function openStore (t: Test): { store: FileSessionStore, warnings: string[], base: string } {
  const base = t.testdir()
  const warnings: string[] = []
  const store = new FileSessionStore({ dir: path.join(base, 'sessions'), reapIntervalMs: 0, log: { warn: (m) => warnings.push(m) } })
  t.teardown(() => store.close())
  return { store, warnings, base }
}

/** A file outside the store: content and mtime recorded, to check nothing reached it. */
function target (dir: string, name: string, content: string | Buffer, mtimeS: number): { file: string, unchanged: () => boolean } {
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, name)
  fs.writeFileSync(file, content)
  fs.utimesSync(file, mtimeS, mtimeS)
  const before = fs.readFileSync(file)
  return {
    file,
    unchanged: () => fs.existsSync(file) && fs.readFileSync(file).equals(before) && Math.round(fs.statSync(file).mtimeMs / 1000) === Math.round(mtimeS)
  }
}

function idInShard (shard: string): string {
  for (;;) {
    const id = newSessionId()
    if (shardOf(id) === shard) return id
  }
}

t.test('a symlink where a record should be: never read, touched, deleted or reaped through; a save replaces the link itself', async (t) => {
  const { store, warnings, base } = openStore(t)
  const now = Date.now() / 1000
  // A valid record elsewhere: following the link would "find" this session.
  const victim = target(path.join(base, 'outside'), 'victim.json', encodeRecord('{"user":"admin"}'), now + HOUR)
  const id = newSessionId()
  const record = sessionPaths(store.dir, id).record
  fs.symlinkSync(victim.file, record)

  t.equal(await store.get(id), null, 'get: no session (the link is not read through)')
  await store.touch(id, 24 * HOUR * 1000)
  t.ok(victim.unchanged(), 'touch: the target\'s mtime and content are unchanged')
  await store.destroy(id)
  t.ok(victim.unchanged(), 'destroy: the target is not deleted')
  t.ok(fs.lstatSync(record).isSymbolicLink(), 'and the link is left alone')
  const reaped = await reapDirectory(store.dir, { now: Date.now() + 48 * HOUR * 1000 })
  t.ok(victim.unchanged(), 'reaper (two days later): the target is not deleted')
  t.ok(reaped.foreign >= 1, `the reaper counted it as foreign (${reaped.foreign})`)
  t.equal(warnings.filter((w) => /is a symbolic link, not a record this store wrote; left alone/.test(w)).length, 1, 'one warning for that id')
  t.notMatch(warnings.join('\n'), new RegExp(id), 'the warning does not show the whole id')

  await store.set(id, '{"user":"alice"}', 60_000)
  t.ok(victim.unchanged(), 'a save does not write through the link')
  t.ok(fs.lstatSync(record).isFile(), 'it replaced the link with a record of ours')
  t.equal((await store.get(id))?.json, '{"user":"alice"}')
})

t.test('a dangling link, a link to a directory and a FIFO in a record\'s place are no session, at once', async (t) => {
  const { store, base } = openStore(t)
  const cases: Array<[string, (file: string) => void]> = [
    ['dangling link', (file) => fs.symlinkSync(path.join(base, 'nothing-here'), file)],
    ['link to a directory', (file) => fs.symlinkSync(base, file)],
    ['FIFO', (file) => execFileSync('mkfifo', [file])]
  ]
  for (const [what, plant] of cases) {
    const id = newSessionId()
    plant(sessionPaths(store.dir, id).record)
    const started = Date.now()
    t.equal(await store.get(id), null, `${what}: no session`)
    await store.touch(id, 60_000)
    await store.destroy(id)
    t.ok(Date.now() - started < 2000, `${what}: answered without waiting (${Date.now() - started} ms)`)
  }
  t.notOk(fs.existsSync(path.join(base, 'nothing-here')), 'nothing was created at the dangling link\'s target')
})

t.test('a symlinked tombstone is not a tombstone, and is not followed', async (t) => {
  const { store, base } = openStore(t)
  const now = Date.now() / 1000
  const victim = target(path.join(base, 'outside'), 'file', 'keep', now + HOUR)
  const id = newSessionId()
  await store.set(id, '{"v":1}', 60_000)
  fs.symlinkSync(victim.file, sessionPaths(store.dir, id).tombstone)
  await store.set(id, '{"v":2}', 60_000)
  t.equal((await store.get(id))?.json, '{"v":2}', 'the save stands (a link is not our tombstone)')
  await reapDirectory(store.dir, { now: Date.now() + 48 * HOUR * 1000 })
  t.ok(victim.unchanged(), 'its target is untouched, even by the reaper')
})

t.test('a shard replaced by a symlink while the store runs: writes, reads and the reaper stay in the shard that was checked', async (t) => {
  const { store, base } = openStore(t)
  const now = Date.now() / 1000
  const elsewhere = path.join(base, 'elsewhere')
  // An unrelated file named like an expired record: the reaper deleted such a file.
  const unrelated = target(elsewhere, `${newSessionId()}.json`, 'not a session', now - 48 * HOUR)
  const before = idInShard('3')
  await store.set(before, '{"before":1}', 60_000)
  const shard = path.join(store.dir, '3')
  fs.renameSync(shard, path.join(base, 'moved-shard'))
  fs.symlinkSync(elsewhere, shard)

  const id = idInShard('3')
  await store.set(id, '{"after":1}', 60_000)
  t.equal((await store.get(id))?.json, '{"after":1}', 'a new session is saved and read')
  t.equal((await store.get(before))?.json, '{"before":1}', 'an older one is still read')
  await store.touch(id, 60_000)
  await store.destroy(before)
  t.same(fs.readdirSync(elsewhere), [path.basename(unrelated.file)], 'nothing was written into the link\'s target')
  const reaped = await store.reap()
  t.equal(reaped?.errors, 0)
  t.ok(unrelated.unchanged(), 'the reaper did not delete the unrelated file behind the link')
})

t.test('the reaper, by directory name: a shard that is a symlink is never read or reaped through', async (t) => {
  const base = t.testdir()
  const dir = path.join(base, 'sessions')
  const store = new FileSessionStore({ dir, reapIntervalMs: 0 })
  await store.close()
  const now = Date.now() / 1000
  const unrelated = target(path.join(base, 'elsewhere'), `${newSessionId()}.json`, 'not a session', now - 48 * HOUR)
  fs.rmdirSync(path.join(dir, 'a'))
  fs.symlinkSync(path.join(base, 'elsewhere'), path.join(dir, 'a'))
  const reaped = await reapDirectory(dir)
  t.ok(unrelated.unchanged(), 'the unrelated file behind the link is still there')
  t.equal(reaped.foreign, 1, 'the linked shard is counted as foreign')
})

t.test("the reaper's stamp: a symlink in its place is not followed (its target's mtime is unchanged)", async (t) => {
  const base = t.testdir()
  const warnings: string[] = []
  const store = new FileSessionStore({ dir: path.join(base, 'sessions'), reapIntervalMs: 60_000, log: { warn: (m) => warnings.push(m) } })
  t.teardown(() => store.close())
  const now = Date.now() / 1000
  const victim = target(path.join(base, 'outside'), 'stamp-target', 'keep', now - HOUR)
  fs.symlinkSync(victim.file, path.join(store.dir, '.reaped'))
  const id = newSessionId()
  await store.set(id, '{"e":1}', 1)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const r = await store.reap()
  t.equal(r?.expired, 1, 'the pass still ran')
  t.ok(victim.unchanged(), 'the stamp link\'s target was not touched')
  t.match(warnings.join('\n'), /\.reaped is a symbolic link/, 'and it was warned about')
})
