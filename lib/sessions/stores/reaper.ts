/**
 * Removes what the file store leaves behind: expired records, lapsed tombstones, orphaned temp
 * files. Stat-only (pitfall 13): a record's expiry IS its mtime (file.ts), so no file is opened
 * or parsed — session-file-store's reaper ran a full `get` (with 5 retries) per file (§4.1).
 *
 * - Bounded concurrency (default 16 stats/unlinks in flight): a directory of 100k sessions does not
 *   hit EMFILE (session-file-store #6, PR #15).
 * - Several workers may reap the same directory at once: every ENOENT (someone else was faster)
 *   is normal; no error ever escapes a run (it is counted), nothing is printed.
 * - Record locks (`<id>.lock`, file/record-lock.ts) count as temp files: a live writer holds one
 *   for milliseconds, so one a minute old was left by a process that died.
 * - Temp files are judged by ctime, not mtime: a temp file gets its final mtime (the expiry, in
 *   the future) before its rename, while ctime is the time of its last change.
 * - Never follows a symlink (issue 10: a shard symlinked elsewhere made the reaper delete an
 *   unrelated file there): shards are reached through the store's checked directory descriptors
 *   (file/store-dir.ts), or, by name, only after lstat shows a real directory; an entry that is
 *   not a regular file (a symlink where a record should be) is counted as `foreign`, warned about
 *   once and left alone; decisions use lstat, and unlink removes a name, never what it points to.
 * - Known, documented race: a record found expired may be replaced by a fresh write to the same id
 *   between our stat and our unlink. Expired ids are not normally written again (@fastify/session
 *   issues a new id for an expired session), and we re-check the mtime just before unlinking.
 */
import fs, { type Dirent } from 'node:fs'
import path from 'node:path'
import { OWNED_NAME, SHARD_NAMES, TEMP_NAME } from './file/paths'
import { unlinkIfPresent } from './file/missing-ok'
import * as fdCalls from './file/fd-calls'
import { isOwnRecordFile, isTopRecordName, warnOtherStoreFiles } from './file/other-stores'

/** Where the store's files are: its StoreDirectory (file/store-dir.ts), or just the directory's name. */
export interface ReapTarget {
  readonly dir: string
  /** Path prefix of the top directory's files. */
  top (): string
  /** Path prefix of one shard's files. */
  shard (name: string): string
  /** A path as a person would name it (messages). */
  shown (file: string): string
}

export interface ReapLog { warn (msg: string): void }

export interface ReapOptions {
  /** Temp files whose ctime is older than this are orphans (a crashed writer). Default 60 s. */
  tempMaxAgeMs?: number
  /** stat/unlink calls in flight at once. Default 16. */
  concurrency?: number
  /** Clock, for tests. */
  now?: number
  /** Receives one warning per foreign entry (a symlink where a record or a shard should be). */
  log?: ReapLog
}

export interface ReapResult {
  scanned: number
  expired: number
  tombstones: number
  temps: number
  /** Entries with our names that are not ours (symlinks, another store's session files at the top): left alone. */
  foreign: number
  errors: number
}

/** Foreign paths already warned about in this process (bounded). */
const warnedForeign = new Set<string>()

function warnForeignOnce (log: ReapLog | undefined, shown: string, what: string): void {
  if (log === undefined || warnedForeign.has(shown)) return
  if (warnedForeign.size >= 10_000) warnedForeign.clear()
  warnedForeign.add(shown)
  log.warn(`session directory entry ${shown} is ${what}, not something this store wrote; left alone (never followed or deleted)`)
}

/** A directory given by name: its shards are lstat-checked before each pass reads them. */
function byName (dir: string): ReapTarget {
  return { dir, top: () => dir, shard: (name) => path.join(dir, name), shown: (file) => file }
}

export async function reapDirectory (where: string | ReapTarget, opts: ReapOptions = {}): Promise<ReapResult> {
  const target = typeof where === 'string' ? byName(where) : where
  const now = opts.now ?? Date.now()
  const tempMaxAgeMs = opts.tempMaxAgeMs ?? 60_000
  const result: ReapResult = { scanned: 0, expired: 0, tombstones: 0, temps: 0, foreign: 0, errors: 0 }
  let work: string[]
  try {
    work = await reapableFiles(target, opts.log, result)
  } catch {
    result.errors++
    return result
  }
  result.scanned = work.length
  const top = target.top()
  let otherStores = 0
  await forEachLimited(work, opts.concurrency ?? 16, async (file) => {
    const name = path.basename(file)
    try {
      const st = await fdCalls.lstat(file)
      if (!st.isFile()) {
        result.foreign++
        warnForeignOnce(opts.log, target.shown(file), st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file')
        return
      }
      if (TEMP_NAME.test(name)) {
        if (now - st.ctimeMs < tempMaxAgeMs) return
        if (await unlinkIfPresent(file)) result.temps++
        return
      }
      if (st.mtimeMs > now) return
      // At the top, `<id>.json` may be another store's session (session-file-store's layout, whose
      // mtime is its last write): only a file with our record header is ours to reap.
      if (file === top + path.sep + name && isTopRecordName(name) && !await isOwnRecordFile(file)) {
        result.foreign++
        otherStores++
        return
      }
      // Narrow the stat→unlink race with a concurrent writer (see header).
      const again = await fdCalls.lstat(file)
      if (!again.isFile() || again.mtimeMs > Date.now()) return
      if (!await unlinkIfPresent(file)) return
      if (name.endsWith('.gone')) result.tombstones++
      else result.expired++
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') result.errors++
    }
  })
  warnOtherStoreFiles(opts.log, target.shown(top), otherStores, true)
  return result
}

/**
 * The store's files: in the shard subdirectories (paths.ts), and at the top (the check() probe's
 * temp files, records of a layout without shards). Entries that are not regular files are counted
 * as foreign here already (readdir's types come from the directory itself, without following).
 */
async function reapableFiles (target: ReapTarget, log: ReapLog | undefined, result: ReapResult): Promise<string[]> {
  const files: string[] = []
  const collect = (base: string, entries: Dirent[]): void => {
    for (const e of entries) {
      if (!OWNED_NAME.test(e.name) && !TEMP_NAME.test(e.name)) continue
      const file = base + path.sep + e.name
      if (e.isFile()) files.push(file)
      else {
        result.foreign++
        warnForeignOnce(log, target.shown(file), e.isSymbolicLink() ? 'a symbolic link' : 'not a regular file')
      }
    }
  }
  collect(target.top(), await fdCalls.readdir(target.top(), { withFileTypes: true }))
  for (const shard of SHARD_NAMES) {
    const base = target.shard(shard)
    if (!base.startsWith('/proc/self/fd/')) {
      // By name: only a real directory is read (a symlink in a shard's place is never followed).
      const st = await fdCalls.lstat(base).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null
        throw err
      })
      if (st === null) continue
      if (!st.isDirectory()) {
        result.foreign++
        warnForeignOnce(log, target.shown(base), st.isSymbolicLink() ? 'a symbolic link' : 'not a directory')
        continue
      }
    }
    const entries = await fdCalls.readdir(base, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []
      throw err
    })
    collect(base, entries)
  }
  return files
}

async function forEachLimited<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++])
  })
  await Promise.all(lanes)
}

/** Creates or touches the stamp (mtime = now) through a descriptor that never follows a symlink. */
async function touchStamp (stamp: string): Promise<void> {
  const fd = await fdCalls.open(stamp, fs.constants.O_WRONLY | fs.constants.O_CREAT | (fs.constants.O_NONBLOCK ?? 0) | fdCalls.NOFOLLOW, 0o600)
  try {
    const t = Date.now() / 1000
    await fdCalls.futimes(fd, t, t)
  } finally {
    await fdCalls.close(fd)
  }
}

export interface Reaper {
  /** Run one pass now (also what the timer does). Never rejects. */
  runOnce (): Promise<ReapResult | null>
  stop (): Promise<void>
}

/**
 * Runs reapDirectory every `intervalMs` (unref'd timer: never keeps the process alive).
 *
 * Several workers of one host share the directory; each has a Reaper, but a stamp file
 * (`.reaped`, its mtime = the last pass) lets only the first worker whose timer fires in an interval
 * do the pass: best effort, two passes at once are harmless. The first pass comes after a random
 * part of the interval so workers started together do not fire together.
 */
export function startReaper (where: string | ReapTarget, intervalMs: number, opts: ReapOptions & { onResult?: (r: ReapResult) => void } = {}): Reaper {
  const target = typeof where === 'string' ? byName(where) : where
  let running: Promise<ReapResult | null> | null = null
  let stopped = false

  async function pass (force: boolean): Promise<ReapResult | null> {
    try {
      const stamp = target.top() + path.sep + '.reaped'
      if (!force) {
        const last = await fdCalls.lstat(stamp).then((s) => s.mtimeMs, () => 0)
        if (Date.now() - last < intervalMs * 0.9) return null
      }
      await touchStamp(stamp).catch((err: NodeJS.ErrnoException) => {
        // A link in the stamp's place: not followed; the pass still runs (only the coordination is lost).
        if (err.code === 'ELOOP') warnForeignOnce(opts.log, target.shown(stamp), 'a symbolic link')
      })
      const r = await reapDirectory(target, opts)
      opts.onResult?.(r)
      return r
    } catch {
      return null
    }
  }

  function runOnce (force = true): Promise<ReapResult | null> {
    if (running === null) running = pass(force).finally(() => { running = null })
    return running
  }

  let timer: NodeJS.Timeout | null = null
  const schedule = (delay: number): void => {
    if (stopped) return
    timer = setTimeout(() => {
      void runOnce(false).finally(() => schedule(intervalMs))
    }, delay)
    timer.unref()
  }
  schedule(Math.round(intervalMs * (0.5 + Math.random() * 0.5)))

  return {
    runOnce: async () => await runOnce(true),
    async stop () {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      await running
    }
  }
}
