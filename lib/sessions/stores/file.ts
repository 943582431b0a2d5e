/**
 * The file session store: one file per session, shared by every worker of one host
 * (single host only — a shared network filesystem's rename semantics are not verified, pitfall 14).
 *
 * Layout in `dir` (0700 like its subdirectories, files 0600):
 *   <s>/<id>.json   the record: `fps1 <bytes>\n<session JSON>` (file/envelope.ts); <s> is one of
 *                   16 shards `0`…`f` picked by a hash of the id (file/paths.ts: one directory
 *                   lock per shard instead of one for all writes)
 *   <s>/<id>.gone   tombstone left by destroy(), empty
 *   <s>/<id>.lock   held (O_EXCL, the owner's pid inside) while a process writes the record
 *   <s>/*.tmp       in-flight atomic writes (file/atomic.ts)
 *   .reaped         stamp of the last reaper pass (reaper.ts)
 *
 * Expiry = the file's mtime. A record is written with mtime = expiresAt (utimes on the temp file
 * before its rename), so
 *   - touch is one cheap `utimes` (no read-modify-write: session-file-store's touch did get+set
 *     and could restore a logged-out session, its PR #55),
 *   - the reaper decides with `stat` alone (pitfall 13),
 *   - the expiry never enters the user's session object (pitfall 12).
 * Costs of that choice: a filesystem with coarse timestamps (FAT: 2 s) rounds expiries; a tool that
 * "fixes" future mtimes would expire sessions. Tombstones use the same trick (mtime = lapse time).
 *
 * Reads: ENOENT is an immediate miss — no retry, no log (pitfall 10; session-file-store retried
 * 5× ≈ 260 ms and logged 5 lines per miss, §4.1). A corrupt/truncated file is a miss plus ONE
 * warning per id (not one per request forever), never a throw (pitfall 11).
 *
 * destroy() vs a slower concurrent set() (DESIGN: "a destroyed session cannot be brought back"):
 * destroy (of a stored record; a never-saved id gets no tombstone) writes the tombstone, THEN
 * unlinks the record; set renames its record into place, THEN checks for a tombstone and removes
 * its own record if one appeared. Whatever the interleaving, either set's rename precedes
 * destroy's unlink, or set's check sees the tombstone.
 *
 * Saves of one session in this process are queued: one write at a time, and the saves that waited
 * are folded into one write (file/latest-write.ts: the newest whole record, or the patches merged
 * in order). A page's parallel requests land in the order they were made, for one or two renames.
 *
 * Patches (a request's changed members, issue 14) read the record, merge and rename the result
 * into place while holding the record's lock file (file/record-lock.ts), so another worker's
 * write cannot land in between and be undone; every record write takes that lock.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { DEFAULT_TOMBSTONE_MS, type PatchOutcome, type SessionPatch, type SessionRecordStore, type StoreCheck, type StoredSession } from './types'
import { decodeRecord, encodeRecord } from './file/envelope'
import { prepareDirectory } from './file/dir'
import { writeAtomic, writeAtomicKeepOpen } from './file/atomic'
import { RECORD_EXT, sessionPaths, type SessionPaths } from './file/paths'
import { reapDirectory, startReaper, type Reaper, type ReapResult } from './reaper'
import { statOrNull, unlinkIfPresent } from './file/missing-ok'
import * as fdCalls from './file/fd-calls'
import { LatestWriteQueue } from './file/latest-write'
import { PinnedRecords } from './file/pinned'
import { lockRecord } from './file/record-lock'
import { combinePatches, mergeRecord, mergeWithin } from './merge'
import { sessionTooLarge } from '../size-limit'

export interface FileStoreLog { warn (msg: string): void }

export interface FileSessionStoreOptions {
  /** The directory (created 0700; an existing looser one is tightened with a warning). */
  dir: string
  /** How long a destroyed id is refused (default DEFAULT_TOMBSTONE_MS, 10 min). */
  tombstoneMs?: number
  /** Reaper interval (default 10 min); 0 disables the timer (call reap() yourself). */
  reapIntervalMs?: number
  /** fsync each write before its rename (default false; see file/atomic.ts for the trade-off). */
  fsync?: boolean
  /** Receives warnings (directory tightened, corrupt record). Nothing is ever printed otherwise. */
  log?: FileStoreLog
  /** Longest wait for another process's write of the same session (default 1000 ms, the store timeout). */
  timeoutMs?: number
}

/**
 * A whole record to write, or changes to merge into the stored one; `maxBytes`: the session-size
 * limit the record written must fit in (a patch's merge is only known here).
 */
type RecordWrite =
  | { paths: SessionPaths, ttlMs: number, json: string, maxBytes?: number }
  | { paths: SessionPaths, ttlMs: number, patch: SessionPatch, maxBytes?: number }

/**
 * Two writes that waited in the queue, as one with the effect of both in order. A patch after a
 * whole record is merged into it (the adapter's whole records are always JSON objects; were one
 * not, the patch could not apply to it either way).
 */
function combineWrites (older: RecordWrite, newer: RecordWrite): RecordWrite {
  if ('json' in newer || !(newer.ttlMs > 0)) return newer
  if (!(older.ttlMs > 0)) return older // removed, then a patch that finds nothing
  const { paths, ttlMs } = newer
  const maxBytes = newer.maxBytes ?? older.maxBytes
  if ('json' in older) return { paths, ttlMs, maxBytes, json: mergeRecord(older.json, newer.patch) ?? older.json }
  return { paths, ttlMs, maxBytes, patch: combinePatches(older.patch, newer.patch) }
}

const DEFAULT_REAP_INTERVAL_MS = 10 * 60 * 1000
/** Distinct corrupt ids remembered for "warn once"; beyond that the memory is reset. */
const MAX_WARNED_IDS = 10_000

export class FileSessionStore implements SessionRecordStore {
  readonly kind = 'file' as const
  readonly dir: string
  readonly tombstoneMs: number
  readonly fsync: boolean
  readonly timeoutMs: number
  private readonly log: FileStoreLog | undefined
  private readonly reaper: Reaper | null
  private readonly warnedCorrupt = new Set<string>()
  /** Descriptors of recently read/written records: a repeated read is one stat (file/pinned.ts). */
  private readonly pinned: PinnedRecords | null = process.platform === 'win32' ? null : new PinnedRecords()
  /** Overlapping saves of one session in this process: in order, those that waited folded into one write (file/latest-write.ts). */
  private readonly recordWrites = new LatestWriteQueue<RecordWrite, PatchOutcome>(async (id, w) => await this.writeRecord(id, w), combineWrites)
  private closed = false

  constructor (opts: FileSessionStoreOptions) {
    if (typeof opts?.dir !== 'string' || opts.dir === '') throw new TypeError('FileSessionStore: option dir is required')
    this.log = opts.log
    this.dir = prepareDirectory(opts.dir, opts.log)
    this.tombstoneMs = opts.tombstoneMs ?? DEFAULT_TOMBSTONE_MS
    this.fsync = opts.fsync === true
    this.timeoutMs = opts.timeoutMs ?? 1000
    const interval = opts.reapIntervalMs ?? DEFAULT_REAP_INTERVAL_MS
    this.reaper = interval > 0 ? startReaper(this.dir, interval) : null
  }

  async get (id: string): Promise<StoredSession | null> {
    const p = sessionPaths(this.dir, id)
    if (this.pinned?.has(id) === true) {
      // Read before: one stat tells whether the copy we hold is still the record (file/pinned.ts).
      const st = await statOrNull(p.record)
      if (st === null) {
        this.pinned.drop(id)
        return null
      }
      if (st.mtimeMs <= Date.now()) return null
      const json = this.pinned.lookup(id, st)
      if (json !== undefined) return { json, expiresAt: Math.round(st.mtimeMs) }
    }
    return await this.readRecord(id, p)
  }

  async set (id: string, json: string, ttlMs: number): Promise<void> {
    const paths = sessionPaths(this.dir, id)
    if (typeof json !== 'string') throw new TypeError('FileSessionStore.set: json must be a string')
    await this.recordWrites.submit(id, { paths, json, ttlMs })
  }

  /** Read, merge and write under the record's lock (file/record-lock.ts), so other workers' patches are kept. */
  async patch (id: string, changes: SessionPatch, ttlMs: number, maxBytes?: number): Promise<PatchOutcome> {
    const paths = sessionPaths(this.dir, id)
    return await this.recordWrites.submit(id, { paths, patch: changes, ttlMs, maxBytes })
  }

  async touch (id: string, ttlMs: number): Promise<void> {
    const p = sessionPaths(this.dir, id)
    if (!(ttlMs > 0)) return
    try {
      // An expired record must stay expired: utimes would bring it back.
      const st = await fdCalls.stat(p.record)
      if (st.mtimeMs <= Date.now()) return
      const t = (Date.now() + ttlMs) / 1000
      await fdCalls.utimes(p.record, t, t)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }

  async destroy (id: string): Promise<void> {
    const p = sessionPaths(this.dir, id)
    this.pinned?.drop(id)
    // A never-saved (or already expired) id needs no tombstone: logout spam must not fill the
    // directory with them, and an expired record is no session, like in the other stores.
    const st = await statOrNull(p.record)
    if (st === null || st.mtimeMs <= Date.now()) return
    await writeAtomic(p.tombstone, Buffer.alloc(0), { mtimeMs: Date.now() + this.tombstoneMs, fsync: this.fsync })
    await unlinkIfPresent(p.record)
  }

  /** Write, read back and delete a probe file: proves the directory is usable, not just present. */
  async check (): Promise<StoreCheck> {
    const start = process.hrtime.bigint()
    const probe = path.join(this.dir, `.check.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
    try {
      const token = randomBytes(8).toString('hex')
      await fsp.writeFile(probe, token, { mode: 0o600, flag: 'wx' })
      const back = await fsp.readFile(probe, 'utf8')
      if (back !== token) throw new Error('probe file read back different content')
      return { ok: true, latencyMs: Number(process.hrtime.bigint() - start) / 1e6 }
    } catch (err) {
      return { ok: false, latencyMs: Number(process.hrtime.bigint() - start) / 1e6, error: (err as Error).message }
    } finally {
      await fsp.unlink(probe).catch(() => {})
    }
  }

  /** One reaper pass now (expired records, lapsed tombstones, orphaned temp files). */
  async reap (): Promise<ReapResult | null> {
    if (this.reaper !== null) return await this.reaper.runOnce()
    return await reapDirectory(this.dir)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.pinned?.close()
    await this.reaper?.stop()
  }

  private async readRecord (id: string, p: SessionPaths): Promise<StoredSession | null> {
    let fd: number
    try {
      fd = await fdCalls.open(p.record, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      this.releasePinsIfOutOfDescriptors(err)
      throw err
    }
    let pinned = false
    try {
      // One descriptor for both: the mtime and the bytes belong to the same file even if a
      // writer renames a new version over the name meanwhile. A short read (truncated file)
      // fails decodeRecord.
      const st = await fdCalls.fstat(fd)
      if (st.mtimeMs <= Date.now()) return null
      const bytes = await fdCalls.readHead(fd, st.size)
      const json = decodeRecord(bytes)
      if (json === null) {
        this.warnCorrupt(id, p.record, bytes.length)
        return null
      }
      if (this.pinned !== null) {
        this.pinned.pin(id, fd, st, json)
        pinned = true
      }
      return { json, expiresAt: Math.round(st.mtimeMs) }
    } finally {
      if (!pinned) await fdCalls.close(fd)
    }
  }

  private async writeRecord (id: string, w: RecordWrite): Promise<PatchOutcome> {
    const p = w.paths
    // Every change of the record takes its lock, not only patches: a record renamed or removed
    // between a patcher's read and its rename would be undone by that rename.
    const lock = await lockRecord(p.lock, this.timeoutMs).catch((err: unknown) => {
      this.releasePinsIfOutOfDescriptors(err)
      throw err
    })
    try {
      // Same rule as the Redis store: a ttl <= 0 (or NaN) ends the session now.
      if (!(w.ttlMs > 0)) {
        this.pinned?.drop(id)
        return (await unlinkIfPresent(p.record)) || 'json' in w ? 'applied' : 'missing'
      }
      let json: string
      if ('json' in w) {
        json = w.json
        const tooLarge = w.maxBytes === undefined ? null : sessionTooLarge(json, w.maxBytes)
        if (tooLarge !== null) throw tooLarge
      } else {
        // Pinned reads make this one stat when this worker read the record last (file/pinned.ts).
        const current = await this.get(id)
        if (current === null) return 'missing'
        const merged = mergeWithin(current.json, w.patch, w.maxBytes)
        if (merged === null) return 'unreadable'
        json = merged
      }
      lock.assertHeld()
      await this.replaceRecord(id, p, json, w.ttlMs)
    } finally {
      await lock.release()
    }
    // The tombstone is checked after the write, not before: a check before could not stop a
    // destroy that lands right after it anyway, so the check after (removing our own write) is
    // the guard, and the common case (no logout) costs one stat instead of two.
    if (await this.isTombstoned(p.tombstone)) {
      this.pinned?.drop(id)
      await unlinkIfPresent(p.record)
    }
    return 'applied'
  }

  private async replaceRecord (id: string, p: SessionPaths, json: string, ttlMs: number): Promise<void> {
    const record = encodeRecord(json)
    const opts = { mtimeMs: Date.now() + ttlMs, fsync: this.fsync }
    if (this.pinned === null) {
      await writeAtomic(p.record, record, opts)
    } else {
      // The next read of this session (the same user's next request) then costs one stat.
      const written = await writeAtomicKeepOpen(p.record, record, opts).catch((err: unknown) => {
        this.releasePinsIfOutOfDescriptors(err)
        throw err
      })
      this.pinned.pin(id, written.fd, written.stats, json)
    }
  }

  /** Pinned descriptors are a cache: when the process runs out, they are the first to go. */
  private releasePinsIfOutOfDescriptors (err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EMFILE' || code === 'ENFILE') this.pinned?.releaseAll()
  }

  private async isTombstoned (file: string): Promise<boolean> {
    const st = await statOrNull(file)
    return st !== null && st.mtimeMs > Date.now()
  }

  private warnCorrupt (id: string, file: string, size: number): void {
    if (this.warnedCorrupt.has(id)) return
    if (this.warnedCorrupt.size >= MAX_WARNED_IDS) this.warnedCorrupt.clear()
    this.warnedCorrupt.add(id)
    // A session id is a bearer credential: log only enough of it to find the file.
    const shown = path.join(path.dirname(file), `${id.slice(0, 6)}…${RECORD_EXT}`)
    this.log?.warn(`session file ${shown} is corrupt or truncated (${size} bytes); treated as no session until it is rewritten or reaped`)
  }
}

/** Same as `new FileSessionStore(opts)`, for symmetry with the other stores' factories. */
export function createFileStore (opts: FileSessionStoreOptions): FileSessionStore {
  return new FileSessionStore(opts)
}
