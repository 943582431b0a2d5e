/**
 * FileSessionStore specifics on real directories and real processes: permissions (pitfall 9),
 * traversal ids (pitfall 8), corrupt files (pitfall 11), tombstone lapse, the reaper (pitfall 13),
 * several processes writing one directory (atomic rename, pitfall 11 / session-file-store #5 #21),
 * and the cost of a miss (pitfall 10). The shared contract is in store-contract-file.test.ts.
 *
 * The multi-process case runs test/fixtures/store-writer.js against dist/: build first.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { FileSessionStore, type FileSessionStoreOptions } from '../lib/sessions/stores/file'
import { reapDirectory } from '../lib/sessions/stores/reaper'
import { encodeRecord, decodeRecord } from '../lib/sessions/stores/file/envelope'
import { SHARD_NAMES, sessionPaths } from '../lib/sessions/stores/file/paths'
import { newSessionId } from './helpers/store-contract'
import { RefusedSessionIdError } from '../lib/sessions/stores/types'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'store-file-'))
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))
let dirs = 0
const freshDir = (): string => path.join(root, `d${dirs++}`)
const mode = (p: string): number => fs.statSync(p).mode & 0o777
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const recordFile = (dir: string, id: string): string => sessionPaths(dir, id).record
const tombstoneFile = (dir: string, id: string): string => sessionPaths(dir, id).tombstone
/** Every file (not directory) under `dir`, as paths relative to it, sorted. */
function filesUnder (dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((rel) => !fs.statSync(path.join(dir, rel)).isDirectory())
    .sort()
}

function openStore (t: Test, opts: Partial<FileSessionStoreOptions> = {}): { store: FileSessionStore, warnings: string[] } {
  const warnings: string[] = []
  const store = new FileSessionStore({ dir: freshDir(), reapIntervalMs: 0, log: { warn: (m) => warnings.push(m) }, ...opts })
  t.teardown(() => store.close())
  return { store, warnings }
}

t.test('directory 0700 and files 0600 even under umask 022', async (t) => {
  const old = process.umask(0o022)
  t.teardown(() => { process.umask(old) })
  const dir = path.join(freshDir(), 'nested', 'sessions')
  const { store, warnings } = openStore(t, { dir })
  t.equal(mode(dir).toString(8), '700', 'directory created 0700')
  const id = newSessionId()
  await store.set(id, '{"secret":"token"}', 60_000)
  t.same(SHARD_NAMES.map((s) => mode(path.join(dir, s)).toString(8)), SHARD_NAMES.map(() => '700'), 'its 16 shard directories too')
  t.equal(mode(recordFile(dir, id)).toString(8), '600', 'session file 0600')
  await store.destroy(id)
  t.equal(mode(tombstoneFile(dir, id)).toString(8), '600', 'tombstone 0600')
  t.same(warnings, [], 'no warning for a directory we created')
})

t.test('an existing 0755 directory is tightened to 0700 with one warning', async (t) => {
  const dir = freshDir()
  fs.mkdirSync(dir, { mode: 0o755 })
  fs.chmodSync(dir, 0o755)
  const first = openStore(t, { dir })
  t.equal(mode(dir).toString(8), '700', 'tightened')
  t.equal(first.warnings.length, 1, 'exactly one warning')
  t.match(first.warnings[0], /0755.*0700/, 'the warning says from what to what')
  const second = openStore(t, { dir })
  t.same(second.warnings, [], 'a second worker on the now-0700 directory does not warn again')
  t.equal((await first.store.check()).ok, true, 'store usable')
})

t.test('traversal ids never touch the filesystem', async (t) => {
  const base = freshDir()
  const dir = path.join(base, 'sessions')
  const { store } = openStore(t, { dir })
  const sentinel = path.join(base, 'x.json')
  fs.writeFileSync(sentinel, 'fps1 9\n{"own":1}')
  const absolute = path.join(base, 'abs-target')
  fs.writeFileSync(absolute + '.json', 'fps1 9\n{"own":2}')
  const futureS = Date.now() / 1000 + 3600
  fs.utimesSync(sentinel, futureS, futureS)
  fs.utimesSync(absolute + '.json', futureS, futureS)
  const before = fs.readdirSync(base).sort()

  for (const evil of ['../x', absolute, `${path.relative(dir, base)}/x`]) {
    await t.rejects(store.get(evil), RefusedSessionIdError, `get(${JSON.stringify(evil)}) does not read outside`)
    await t.rejects(store.set(evil, '{"pwned":1}', 60_000), RefusedSessionIdError)
    await t.rejects(store.touch(evil, 60_000), RefusedSessionIdError)
    await t.rejects(store.destroy(evil), RefusedSessionIdError)
  }
  t.equal(fs.readFileSync(sentinel, 'utf8'), 'fps1 9\n{"own":1}', 'file next to the store dir: not deleted, not overwritten')
  t.equal(fs.readFileSync(absolute + '.json', 'utf8'), 'fps1 9\n{"own":2}', 'absolute-path target untouched')
  t.same(fs.readdirSync(base).sort(), before, 'no file created outside the store directory')
  t.same(filesUnder(dir), [], 'and none inside it either')
})

t.test('a corrupt or truncated file is a miss with exactly one warning, and a later set repairs it', async (t) => {
  const { store, warnings } = openStore(t)
  const future = Date.now() / 1000 + 3600
  const garbage = newSessionId()
  const truncated = newSessionId()
  const foreign = newSessionId()
  const full = encodeRecord(JSON.stringify({ user: 'alice', pad: 'y'.repeat(5000) }))
  const files: Array<[string, Buffer | string]> = [
    [garbage, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x0a, 0xff])],
    [truncated, full.subarray(0, full.length >> 1)],
    [foreign, '{"cookie":{},"__lastAccess":1}'] // session-file-store's own format
  ]
  for (const [id, content] of files) {
    const file = recordFile(store.dir, id)
    fs.writeFileSync(file, content)
    fs.utimesSync(file, future, future)
  }
  for (let i = 0; i < 5; i++) {
    for (const [id] of files) t.equal(await store.get(id), null, `read ${i + 1} of ${id.slice(0, 6)}… is a miss`)
  }
  t.equal(warnings.length, 3, `one warning per corrupt file over 15 reads (got ${warnings.length})`)
  t.match(warnings[0], /corrupt or truncated/)
  t.notOk(warnings.some((w) => files.some(([id]) => w.includes(id))), 'warnings never carry a whole session id (a bearer credential)')
  await store.set(truncated, '{"fresh":1}', 60_000)
  t.equal((await store.get(truncated))?.json, '{"fresh":1}', 'a set replaces the corrupt file')
})

t.test('a record keeps its metadata out of the session: the file is header + the JSON, expiry = mtime', async (t) => {
  const { store } = openStore(t)
  const id = newSessionId()
  const json = '{"user":"alice"}'
  await store.set(id, json, 60_000)
  const file = recordFile(store.dir, id)
  t.equal(decodeRecord(fs.readFileSync(file)), json, 'data in the file is exactly the JSON')
  const got = await store.get(id)
  t.ok(Math.abs(fs.statSync(file).mtimeMs - (got?.expiresAt ?? 0)) < 2, 'expiresAt is the file mtime')
  const inode = fs.statSync(file).ino
  await store.touch(id, 120_000)
  t.equal(fs.statSync(file).ino, inode, 'touch did not rewrite the file (timestamp only)')
  t.ok((await store.get(id))!.expiresAt > Date.now() + 110_000, 'touch moved the expiry')
})

t.test('a tombstone lapses after tombstoneMs', async (t) => {
  const { store } = openStore(t, { tombstoneMs: 300 })
  const id = newSessionId()
  await store.set(id, '{"a":1}', 60_000)
  await store.destroy(id)
  await store.set(id, '{"a":2}', 60_000)
  t.equal(await store.get(id), null, 'refused while the tombstone lives')
  await sleep(450)
  await store.set(id, '{"a":3}', 60_000)
  t.equal((await store.get(id))?.json, '{"a":3}', 'accepted again after it lapsed')
})

t.test('overlapping saves of one session (a page\'s parallel requests): the last one wins, and fewer files are written', async (t) => {
  const { store } = openStore(t)
  const id = newSessionId()
  await store.set(id, JSON.stringify({ n: 0 }), 60_000)
  // inotify: one "rename" event naming the record per temp file renamed over it
  let renames = 0
  const watcher = fs.watch(path.dirname(recordFile(store.dir, id)), (event, name) => { if (event === 'rename' && name === `${id}.json`) renames++ })
  t.teardown(() => watcher.close())
  const SAVES = 40
  const seenAfter: number[] = []
  await Promise.all(Array.from({ length: SAVES }, async (_, i) => {
    await store.set(id, JSON.stringify({ n: i + 1 }), 60_000)
    seenAfter[i] = JSON.parse((await store.get(id))!.json).n
  }))
  t.equal(JSON.parse((await store.get(id))!.json).n, SAVES, 'the session holds the last save')
  const early = seenAfter.map((n, i) => n < i + 1 ? i + 1 : 0).filter(Boolean)
  t.same(early, [], 'no save returned while an older state was on disk')
  await sleep(100) // inotify events arrive asynchronously
  t.ok(renames >= 1 && renames <= 3, `${SAVES} overlapping saves replaced the file ${renames} time(s) (at most 3: the running write, one for the rest)`)
})

// Repeated reads are answered from a copy pinned by an open descriptor after one stat of the name
// (lib/sessions/stores/file/pinned.ts). Another worker (a second store on the same directory)
// must still see every change at once, and descriptors must stay bounded.
t.test('pinned reads: another worker\'s save, touch, destroy and a corrupt replacement are seen at once', async (t) => {
  const { store: worker1, warnings } = openStore(t)
  const worker2 = new FileSessionStore({ dir: worker1.dir, reapIntervalMs: 0 })
  t.teardown(() => worker2.close())
  const id = newSessionId()
  await worker1.set(id, '{"v":1}', 60_000)
  t.equal((await worker1.get(id))?.json, '{"v":1}')
  t.equal((await worker1.get(id))?.json, '{"v":1}', 'read again (pinned)')
  for (let v = 2; v <= 20; v++) {
    await worker2.set(id, `{"v":${v}}`, 60_000)
    t.equal((await worker1.get(id))?.json, `{"v":${v}}`, `worker 1 sees worker 2's save ${v}`)
  }
  const before = (await worker1.get(id))!.expiresAt
  await worker2.touch(id, 600_000)
  const after = (await worker1.get(id))!.expiresAt
  t.ok(after > before + 500_000, `worker 1 sees worker 2's touch (expiry +${after - before} ms)`)
  // a file put in place by hand (same size as the record, so only the inode tells them apart)
  const file = recordFile(worker1.dir, id)
  const swapped = `${file}.by-hand`
  fs.writeFileSync(swapped, encodeRecord('{"v":99}'), { mode: 0o600 })
  fs.utimesSync(swapped, Date.now() / 1000 + 60, Date.now() / 1000 + 60)
  fs.renameSync(swapped, file)
  t.equal((await worker1.get(id))?.json, '{"v":99}', 'a same-size file renamed over the record by hand is read')
  fs.writeFileSync(swapped, 'garbage')
  fs.utimesSync(swapped, Date.now() / 1000 + 60, Date.now() / 1000 + 60)
  fs.renameSync(swapped, file)
  t.equal(await worker1.get(id), null, 'a corrupt replacement is a miss, not the old pinned copy')
  t.equal(warnings.length, 1, 'with its one warning')
  await worker1.set(id, '{"v":100}', 60_000)
  t.equal((await worker1.get(id))?.json, '{"v":100}')
  await worker2.destroy(id)
  t.equal(await worker1.get(id), null, 'worker 1 sees worker 2\'s logout')
  await worker1.set(id, '{"v":101}', 60_000)
  t.equal(await worker1.get(id), null, 'and its tombstone refuses worker 1\'s late save')
})

t.test('pinned reads: descriptors stay bounded and are released by close()', { skip: process.platform !== 'linux' && 'counts /proc/self/fd' }, async (t) => {
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length
  const baseline = openFds()
  const store = new FileSessionStore({ dir: freshDir(), reapIntervalMs: 0 })
  const other = new FileSessionStore({ dir: store.dir, reapIntervalMs: 0 })
  t.teardown(() => other.close())
  const ids = Array.from({ length: 400 }, () => newSessionId())
  for (const id of ids) await store.set(id, '{"u":1}', 60_000)
  let wrong = 0
  for (const id of ids) if ((await store.get(id))?.json !== '{"u":1}') wrong++
  t.equal(wrong, 0, 'every session read back')
  // A dropped pin's descriptor is closed off the request path (an fs.close in the thread pool,
  // slow on a loaded machine): wait for the count to come down to the bound; a leak never does.
  const settlesAt = async (bound: number): Promise<number> => {
    const deadline = Date.now() + 10_000
    while (openFds() - baseline > bound && Date.now() < deadline) await sleep(10)
    return openFds() - baseline
  }
  // Each store also holds its directory and 16 shards open (file/store-dir.ts): 2 × 17.
  const bound = 256 + 2 * 17 + 4
  const held = await settlesAt(bound)
  t.ok(held <= bound, `400 sessions read: ${held} descriptors held (at most 256 pinned records, 2 × 17 directories and a few)`)
  // one session rewritten 200 times by another worker and read after each: no pile-up
  const hot = ids[ids.length - 1]
  for (let i = 0; i < 200; i++) {
    await other.set(hot, `{"i":${i}}`, 60_000)
    await store.get(hot)
  }
  const afterReplacements = await settlesAt(held + 2)
  t.ok(afterReplacements <= held + 2, `200 replacements by another worker left ${afterReplacements - held} more descriptors`)
  await store.close()
  await other.close()
  const afterClose = await settlesAt(2)
  t.ok(afterClose <= 2, `after close(): ${afterClose} descriptors above the baseline`)
})

t.test('pinned reads under a small descriptor limit: at most 1/8 of it, all given back when the process runs out', { skip: process.platform !== 'linux' && 'ulimit and /proc' }, async (t) => {
  const fixture = path.join(__dirname, 'fixtures', 'store-fd-limit.js')
  const run = spawnSync('bash', ['-c', `ulimit -n 200 && exec "${process.execPath}" "${fixture}" "${freshDir()}"`], { encoding: 'utf8', timeout: 60_000 })
  t.equal(run.status, 0, run.stderr)
  const out = JSON.parse(run.stdout)
  t.equal(out.readBack, 300, 'all 300 sessions read back')
  t.ok(out.pinned <= 25 + 2, `${out.pinned} descriptors pinned under a limit of 200 (at most 25)`)
  t.equal(out.duringExhaustion, 'EMFILE', 'with no descriptor left, a save fails (a 503 for that request)')
  t.equal(out.afterRelease, '{"late":2}', 'the pins were given back: the next save and read work although the app still holds every other descriptor')
})

t.test('records are spread over 16 shard directories; a shard removed by hand comes back with the next save', async (t) => {
  const { store } = openStore(t)
  const ids = Array.from({ length: 800 }, () => newSessionId())
  await Promise.all(ids.map(async (id) => await store.set(id, '{"s":1}', 60_000)))
  const perShard = SHARD_NAMES.map((s) => fs.readdirSync(path.join(store.dir, s)).length)
  t.equal(perShard.reduce((a, b) => a + b, 0), 800, 'every record is in a shard')
  t.ok(Math.min(...perShard) >= 25 && Math.max(...perShard) <= 100, `each shard holds about 1/16 of them: ${perShard.join(' ')}`)
  const id = ids[0]
  const shard = path.dirname(recordFile(store.dir, id))
  fs.rmSync(shard, { recursive: true })
  t.equal(await store.get(id), null, 'its sessions are gone with it (a miss, no error)')
  await store.set(id, '{"s":2}', 60_000)
  t.equal((await store.get(id))?.json, '{"s":2}', 'the next save recreates the shard')
  t.equal(mode(shard).toString(8), '700', '0700')
})

t.test('fsync option: same results', async (t) => {
  const { store } = openStore(t, { fsync: true })
  const id = newSessionId()
  await store.set(id, '{"durable":true}', 60_000)
  t.equal((await store.get(id))?.json, '{"durable":true}')
})

t.test('check() fails (no throw) when the directory is gone', async (t) => {
  const { store } = openStore(t)
  t.equal((await store.check()).ok, true, 'ok while the directory exists')
  fs.rmSync(store.dir, { recursive: true })
  const c = await store.check()
  t.equal(c.ok, false, 'not ok once it is removed')
  t.match(c.error, /ENOENT/, 'with the reason')
  t.equal(await store.get(newSessionId()), null, 'a get is still a plain miss')
})

t.test('reaper: removes expired records, lapsed tombstones and orphaned temps; keeps the rest', async (t) => {
  const { store } = openStore(t, { tombstoneMs: 100 })
  const dir = store.dir
  const expired = newSessionId()
  const live = newSessionId()
  const destroyed = newSessionId()
  await store.set(expired, '{"e":1}', 100)
  await store.set(live, '{"l":1}', 3_600_000)
  await store.set(destroyed, '{"d":1}', 60_000)
  await store.destroy(destroyed)
  const orphanId = newSessionId()
  fs.writeFileSync(`${recordFile(dir, orphanId)}.4242.0123abcd.tmp`, 'half a wri')
  fs.writeFileSync(path.join(dir, 'README.txt'), 'not ours')
  await sleep(250)

  const now = await reapDirectory(dir)
  t.equal(now.expired, 1, 'the expired record is removed')
  t.equal(now.tombstones, 1, 'the lapsed tombstone is removed')
  t.equal(now.temps, 0, 'a temp file younger than a minute may be a write in progress: kept')
  t.equal(now.errors, 0)

  const later = await reapDirectory(dir, { now: Date.now() + 61_000 })
  t.equal(later.temps, 1, 'the orphaned temp file, a minute later, is removed')
  t.same(filesUnder(dir), ['README.txt', path.relative(dir, recordFile(dir, live))].sort(), 'live record and foreign file stay')
  t.equal((await store.get(live))?.json, '{"l":1}', 'live session still readable')
})

t.test('reaper: several reapers on one directory at once (cluster workers) agree and never fail', async (t) => {
  const { store } = openStore(t)
  const other = new FileSessionStore({ dir: store.dir, reapIntervalMs: 0 })
  t.teardown(() => other.close())
  const n = 400
  await Promise.all(Array.from({ length: n }, async () => await store.set(newSessionId(), '{"old":1}', 1)))
  const live = newSessionId()
  await store.set(live, '{"l":1}', 60_000)
  await sleep(20)
  const results = await Promise.all([reapDirectory(store.dir), reapDirectory(store.dir, { concurrency: 4 }), store.reap(), other.reap()])
  t.same(results.map((r) => r?.errors), [0, 0, 0, 0], 'no reaper saw an error')
  t.equal(results.reduce((sum, r) => sum + (r?.expired ?? 0), 0), n, `each of the ${n} expired files removed exactly once between them`)
  t.same(filesUnder(store.dir).filter((f) => f.endsWith('.json')), [path.relative(store.dir, recordFile(store.dir, live))], 'only the live record is left')
})

t.test('the reaper timer runs by itself and is unref\'d', async (t) => {
  const { store } = openStore(t, { reapIntervalMs: 200 })
  const id = newSessionId()
  await store.set(id, '{"e":1}', 50)
  const file = recordFile(store.dir, id)
  t.ok(fs.existsSync(file), 'the record was written')
  const deadline = Date.now() + 5000
  while (fs.existsSync(file) && Date.now() < deadline) await sleep(50)
  t.notOk(fs.existsSync(file), 'expired file removed by the timer without a call')
})

t.test('missing ids are fast misses', async (t) => {
  const { store, warnings } = openStore(t)
  const start = performance.now()
  for (let i = 0; i < 200; i++) t.equal(await store.get(newSessionId()), null)
  const ms = performance.now() - start
  t.comment(`200 misses: ${ms.toFixed(1)} ms (${(ms / 200).toFixed(3)} ms each)`)
  t.ok(ms < 2000, `200 misses in ${ms.toFixed(0)} ms (session-file-store: ~260 ms EACH)`)
  t.same(warnings, [], 'and silent')
})

function runWriter (args: string[]): Promise<{ code: number | null, out: string, err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'store-writer.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, out, err }))
  })
}

t.test('4 processes × 300 concurrent writes of 1–64 KB on 20 shared ids: every read and every file is complete', async (t) => {
  const dir = freshDir()
  fs.mkdirSync(dir, { mode: 0o700 })
  const ids = Array.from({ length: 20 }, () => newSessionId())
  const start = Date.now()
  const runs = await Promise.all([0, 1, 2, 3].map(async (w) => await runWriter([dir, String(w), '300', ids.join(','), '8'])))
  const elapsed = Date.now() - start
  let sets = 0
  let hits = 0
  for (const r of runs) {
    t.equal(r.code, 0, `writer exited 0 ${r.err}`)
    const report = JSON.parse(r.out) as { sets: number, gets: number, hits: number, bad: unknown[], warnings: string[] }
    t.same(report.bad, [], `writer: ${report.hits} reads, none incomplete or foreign`)
    t.same(report.warnings, [], 'no corrupt-file warning in any writer')
    sets += report.sets
    hits += report.hits
  }
  t.ok(hits > 100, `reads did hit records while others wrote (${hits})`)
  t.comment(`${sets} sets and ${hits} checked reads across 4 processes in ${elapsed} ms`)
  const names = filesUnder(dir)
  t.same(names.filter((n) => n.endsWith('.tmp')), [], 'no temp file left behind')
  const records = names.filter((n) => n.endsWith('.json'))
  t.equal(records.length, 20, 'one file per id')
  const crypto = await import('node:crypto')
  const broken = records.filter((n) => {
    const json = decodeRecord(fs.readFileSync(path.join(dir, n)))
    if (json === null) return true
    const o = JSON.parse(json) as { w: number, seq: number, pad: string, sum: string }
    return crypto.createHash('sha256').update(`${o.w}:${o.seq}:${o.pad}`).digest('hex') !== o.sum
  })
  t.same(broken, [], 'every file on disk is a complete, checksummed payload')
})
