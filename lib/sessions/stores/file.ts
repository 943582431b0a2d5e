/**
 * The file session store: one file per session, shared by every worker of one host
 * (single host only — a shared network filesystem's rename semantics are not verified, pitfall 14).
 *
 * Layout in `dir` (0700 like its subdirectories, files 0600):
 *   <s>/<id>.json   the record: `fps1 <bytes>\n<session JSON>` (file/envelope.ts); <s> is one of
 *                   16 shards `0`…`f` picked by a hash of the id (file/paths.ts: one directory
 *                   lock per shard instead of one for all writes)
 *   <s>/<id>.gone   tombstone left by destroy(), empty
 *   <s>/<id>.lock   held (O_EXCL, kept open) while a process writes the record; it becomes the
 *                   new record (written into, then renamed over <id>.json)
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
 * write cannot land in between and be undone; every record write takes that lock, and the lock
 * file itself is the new record: renaming it over the record publishes it and releases the lock.
 */
import { randomBytes } from 'node:crypto'
import { constants as fsConstants, type Stats } from 'node:fs'
import path from 'node:path'
import { DEFAULT_TOMBSTONE_MS, type PatchOutcome, type SessionPatch, type SessionRecordStore, type StoreCheck, type StoredSession } from './types'
import { decodeRecord, encodeRecord } from './file/envelope'
import { StoreDirectory } from './file/store-dir'
import { fillFile, writeAtomic } from './file/atomic'
import { RECORD_EXT, sessionPaths, shardOf, type SessionPaths } from './file/paths'
import { reapDirectory, startReaper, type Reaper, type ReapResult } from './reaper'
import { lstatOrNull, unlinkIfPresent } from './file/missing-ok'
import * as fdCalls from './file/fd-calls'
import { LatestWriteQueue } from './file/latest-write'
import { PinnedRecords } from './file/pinned'
import { lockRecord } from './file/record-lock'
import { combinePatches, mergeRecord, mergeWithin } from './merge'
import { checkTopForOtherStores } from './file/other-stores'
import { sessionTooLarge } from '../size-limit'

export interface FileStoreLog { warn (msg: string): void }

export interface FileSessionStoreOptions {
  /**
   * The directory (created 0700). It and its shards must be ours: owned by this process's user, not
   * symlinks, writable by us only (file/dir.ts); an existing one others may only read is tightened
   * to 0700 with a warning; anything else throws ForeignDirectoryError.
   */
  dir: string
  /** How errors name the directory's setting (default `SESSION_DIR`). */
  where?: string
  /** How long a destroyed id is refused (default DEFAULT_TOMBSTONE_MS, 10 min). */
  tombstoneMs?: number
  /** Reaper interval (default 10 min); 0 disables the timer (call reap() yourself). */
  reapIntervalMs?: number
  /** fsync each write before its rename (default false; see file/atomic.ts for the trade-off). */
  fsync?: boolean
  /** Receives warnings (directory tightened, corrupt record, a link where a record should be). Nothing is ever printed otherwise. */
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
/**
 * Record reads never follow a symlink, and never wait on a FIFO planted where a record should be
 * (O_NONBLOCK only matters for those: a regular file opens and reads the same).
 */
const READ_RECORD = fdCalls.READ_NOFOLLOW | (fsConstants.O_NONBLOCK ?? 0)

export class FileSessionStore implements SessionRecordStore {
  readonly kind = 'file' as const
  /** The directory, absolute (its files are reached through `dirs`, see file/store-dir.ts). */
  readonly dir: string
  private readonly dirs: StoreDirectory
  private readonly shardDir = (shard: string): string => this.dirs.shard(shard)
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
  /** Operations in flight (see get()). */
  private active = 0

  constructor (opts: FileSessionStoreOptions) {
    if (typeof opts?.dir !== 'string' || opts.dir === '') throw new TypeError('FileSessionStore: option dir is required')
    this.log = opts.log
    this.dirs = new StoreDirectory(opts.dir, opts.where ?? 'SESSION_DIR', opts.log)
    this.dir = this.dirs.dir
    // session-file-store's sessions (`<dir>/<id>.json`) are not read: said once, at boot.
    checkTopForOtherStores(this.dirs.top(), this.dir, opts.log)
    this.tombstoneMs = opts.tombstoneMs ?? DEFAULT_TOMBSTONE_MS
    this.fsync = opts.fsync === true
    this.timeoutMs = opts.timeoutMs ?? 1000
    const interval = opts.reapIntervalMs ?? DEFAULT_REAP_INTERVAL_MS
    this.reaper = interval > 0 ? startReaper(this.dirs, interval, { log: opts.log }) : null
  }

  // The operations, counted while in flight: close() waits for them before it closes the
  // directory descriptors their paths go through (a closed number may be reused by another file).

  async get (id: string): Promise<StoredSession | null> {
    this.active++
    try { return await this.getNow(id) } finally { this.active-- }
  }

  async set (id: string, json: string, ttlMs: number): Promise<void> {
    this.active++
    try { await this.setNow(id, json, ttlMs) } finally { this.active-- }
  }

  /** Read, merge and write under the record's lock (file/record-lock.ts), so other workers' patches are kept. */
  async patch (id: string, changes: SessionPatch, ttlMs: number, maxBytes?: number): Promise<PatchOutcome> {
    this.active++
    try { return await this.patchNow(id, changes, ttlMs, maxBytes) } finally { this.active-- }
  }

  async touch (id: string, ttlMs: number): Promise<void> {
    this.active++
    try { await this.touchNow(id, ttlMs) } finally { this.active-- }
  }

  async destroy (id: string): Promise<void> {
    this.active++
    try { await this.destroyNow(id) } finally { this.active-- }
  }

  async check (): Promise<StoreCheck> {
    this.active++
    try { return await this.checkNow() } finally { this.active-- }
  }

  /** The record, tombstone and lock names of `id` (throws RefusedSessionIdError for a bad id). */
  private paths (id: string): SessionPaths {
    return sessionPaths(this.dir, id, this.shardDir)
  }

  private async getNow (id: string): Promise<StoredSession | null> {
    const p = this.paths(id)
    if (this.pinned?.has(id) === true) {
      // Read before: one stat tells whether the copy we hold is still the record (file/pinned.ts).
      const st = await lstatOrNull(p.record)
      if (st === null || !st.isFile()) {
        this.pinned.drop(id)
        if (st !== null) this.warnForeign(id, p.record, st)
        return null
      }
      if (st.mtimeMs <= Date.now()) return null
      const json = this.pinned.lookup(id, st)
      if (json !== undefined) return { json, expiresAt: Math.round(st.mtimeMs) }
    }
    return await this.readRecord(id, p)
  }

  private async setNow (id: string, json: string, ttlMs: number): Promise<void> {
    const paths = this.paths(id)
    if (typeof json !== 'string') throw new TypeError('FileSessionStore.set: json must be a string')
    await this.recordWrites.submit(id, { paths, json, ttlMs })
  }

  private async patchNow (id: string, changes: SessionPatch, ttlMs: number, maxBytes?: number): Promise<PatchOutcome> {
    const paths = this.paths(id)
    return await this.recordWrites.submit(id, { paths, patch: changes, ttlMs, maxBytes })
  }

  private async touchNow (id: string, ttlMs: number): Promise<void> {
    const p = this.paths(id)
    if (!(ttlMs > 0)) return
    try {
      // An expired record must stay expired: utimes would bring it back.
      const st = await fdCalls.lstat(p.record)
      if (!st.isFile()) { this.warnForeign(id, p.record, st); return }
      if (st.mtimeMs <= Date.now()) return
      const t = (Date.now() + ttlMs) / 1000
      // lutimes: were the record swapped for a symlink since the lstat, only the link's own times change.
      await fdCalls.lutimes(p.record, t, t)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }

  private async destroyNow (id: string): Promise<void> {
    const p = this.paths(id)
    this.pinned?.drop(id)
    // A never-saved (or already expired) id needs no tombstone: logout spam must not fill the
    // directory with them, and an expired record is no session, like in the other stores.
    const st = await lstatOrNull(p.record)
    if (st !== null && !st.isFile()) { this.warnForeign(id, p.record, st); return }
    if (st === null || st.mtimeMs <= Date.now()) return
    await writeAtomic(p.tombstone, Buffer.alloc(0), { mtimeMs: Date.now() + this.tombstoneMs, fsync: this.fsync })
    await unlinkIfPresent(p.record)
  }

  /** Write, read back and delete a probe file: proves the directory is usable, not just present. */
  private async checkNow (): Promise<StoreCheck> {
    const start = process.hrtime.bigint()
    const probe = `${this.dirs.top()}${path.sep}.check.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
    try {
      const token = Buffer.from(randomBytes(8).toString('hex'))
      // 'wx' (O_EXCL) never follows a symlink; the read back does not either.
      const out = await fdCalls.open(probe, 'wx', 0o600)
      try { await fdCalls.writeAll(out, token) } finally { await fdCalls.close(out) }
      const back = await fdCalls.open(probe, fdCalls.READ_NOFOLLOW)
      let read: Buffer
      try { read = await fdCalls.readHead(back, token.length + 1) } finally { await fdCalls.close(back) }
      if (!read.equals(token)) throw new Error('probe file read back different content')
      return { ok: true, latencyMs: Number(process.hrtime.bigint() - start) / 1e6 }
    } catch (err) {
      return { ok: false, latencyMs: Number(process.hrtime.bigint() - start) / 1e6, error: this.dirs.shownIn((err as Error).message) }
    } finally {
      await fdCalls.unlink(probe).catch(() => {})
    }
  }

  /** One reaper pass now (expired records, lapsed tombstones, orphaned temp files). */
  async reap (): Promise<ReapResult | null> {
    if (this.reaper !== null) return await this.reaper.runOnce()
    return await reapDirectory(this.dirs, { log: this.log })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.pinned?.close()
    await this.reaper?.stop()
    // Operations still running finish first (each is short; bounded anyway, then closed regardless).
    const deadline = Date.now() + 2 * this.timeoutMs + 1000
    while (this.active > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    this.dirs.close()
  }

  private async readRecord (id: string, p: SessionPaths): Promise<StoredSession | null> {
    let fd: number
    try {
      fd = await fdCalls.open(p.record, READ_RECORD)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return null
      if (code === 'ELOOP') { this.warnForeign(id, p.record, null); return null }
      this.releasePinsIfOutOfDescriptors(err)
      throw err
    }
    let pinned = false
    try {
      // One descriptor for both: the mtime and the bytes belong to the same file even if a
      // writer renames a new version over the name meanwhile. A short read (truncated file)
      // fails decodeRecord.
      const st = await fdCalls.fstat(fd)
      if (!st.isFile()) { this.warnForeign(id, p.record, st); return null }
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
    // Every change of the record takes its lock, not only patches: a record renamed or removed
    // between a patcher's read and its rename would be undone by that rename.
    const lock = await lockRecord(w.paths.lock, this.timeoutMs).catch(async (err: unknown) => {
      this.releasePinsIfOutOfDescriptors(err)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      // Its shard directory was removed by hand: made (and checked) again, then the paths anew.
      this.dirs.reopenShard(shardOf(id))
      w = { ...w, paths: this.paths(id) }
      return await lockRecord(w.paths.lock, this.timeoutMs)
    })
    const p = w.paths
    let published = false
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
      // The lock file becomes the record (file/record-lock.ts): written, given its expiry, renamed.
      const record = encodeRecord(json)
      const stats = await fillFile(lock.fd, record, { mtimeMs: Date.now() + w.ttlMs, fsync: this.fsync }, this.pinned !== null)
      lock.assertHeld()
      await lock.publish(p.record)
      published = true
      // The next read of this session (the same user's next request) then costs one stat.
      if (this.pinned !== null && stats !== null) this.pinned.pin(id, lock.fd, stats, json)
      else await fdCalls.close(lock.fd)
    } catch (err) {
      this.releasePinsIfOutOfDescriptors(err)
      throw err
    } finally {
      if (!published) await lock.release()
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

  /** Pinned descriptors are a cache: when the process runs out, they are the first to go. */
  private releasePinsIfOutOfDescriptors (err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EMFILE' || code === 'ENFILE') this.pinned?.releaseAll()
  }

  private async isTombstoned (file: string): Promise<boolean> {
    const st = await lstatOrNull(file)
    return st !== null && st.isFile() && st.mtimeMs > Date.now()
  }

  /**
   * Something other than a regular file where a record should be (a symlink, a FIFO…): not ours.
   * Never followed, read, touched or deleted; one warning per id (issue 10: reads followed a
   * planted link and a touch moved its target's mtime by 23 h).
   */
  private warnForeign (id: string, file: string, st: Stats | null): void {
    if (this.warnedCorrupt.has(id)) return
    if (this.warnedCorrupt.size >= MAX_WARNED_IDS) this.warnedCorrupt.clear()
    this.warnedCorrupt.add(id)
    const what = st === null || st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'
    this.log?.warn(`session file ${this.shownRecord(id, file)} is ${what}, not a record this store wrote; left alone and treated as no session`)
  }

  /** A session id is a bearer credential: log only enough of it to find the file. */
  private shownRecord (id: string, file: string): string {
    return path.join(path.dirname(this.dirs.shown(file)), `${id.slice(0, 6)}…${RECORD_EXT}`)
  }

  private warnCorrupt (id: string, file: string, size: number): void {
    if (this.warnedCorrupt.has(id)) return
    if (this.warnedCorrupt.size >= MAX_WARNED_IDS) this.warnedCorrupt.clear()
    this.warnedCorrupt.add(id)
    this.log?.warn(`session file ${this.shownRecord(id, file)} is corrupt or truncated (${size} bytes); treated as no session until it is rewritten or reaped`)
  }
}

/** Same as `new FileSessionStore(opts)`, for symmetry with the other stores' factories. */
export function createFileStore (opts: FileSessionStoreOptions): FileSessionStore {
  return new FileSessionStore(opts)
}
