/**
 * Atomic file replacement (tombstones; a record is written into its lock file the same way and
 * renamed from there, record-lock.ts): write a uniquely named temp file in the same directory, give it its
 * final mtime, optionally fsync, then rename over the target (pitfall 11).
 *
 * - The temp name is `<target>.<pid>.<random>.tmp`: unique across processes, which
 *   write-file-atomic's per-process queue is not (research §4.1); the reaper recognises these
 *   names and removes orphans (session-file-store's `\.json$` pattern never matched its temps).
 * - Mode 0600 is given at creation (`wx`), so the data is never readable by others, not even
 *   between create and chmod (pitfall 9).
 * - The mtime is set on the temp file before the rename, so the record appears with its expiry
 *   already right: no reader ever sees a fresh record with a stale mtime.
 * - `fsync` (off by default): rename is atomic either way — a reader sees the old or the new file,
 *   never a mix. fsync only adds durability across a power loss / kernel crash (without it the
 *   newest writes of the last seconds may be lost or, on some filesystems, come back empty, which
 *   decodeRecord reads as a miss). Sessions are cheap to lose; fsync costs ~1-10 ms per write.
 * - Windows: rename onto a file another process holds open fails with EPERM/EBUSY
 *   (valery-barysok/session-file-store#69); retried a few times there.
 */
import { randomBytes } from 'node:crypto'
import type { Stats } from 'node:fs'
import * as fdCalls from './fd-calls'

export interface AtomicWriteOptions {
  /** The final mtime (ms since epoch): the record's expiry / the tombstone's lapse time. */
  mtimeMs: number
  fsync: boolean
}

export function tempName (target: string): string {
  return `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
}

export async function writeAtomic (target: string, data: Buffer, opts: AtomicWriteOptions): Promise<void> {
  const tmp = tempName(target)
  let fd: number | null = null
  let renamed = false
  try {
    fd = await openExclusive(tmp)
    await fillFile(fd, data, opts, false)
    const closing = fd
    fd = null
    await fdCalls.close(closing)
    await renameWithRetry(tmp, target)
    renamed = true
  } finally {
    if (fd !== null) await fdCalls.close(fd).catch(() => {})
    if (!renamed) await fdCalls.unlink(tmp).catch(() => {})
  }
}

/**
 * Writes `data` from offset 0 of a new, still unpublished file, then gives it its final mtime
 * (after the write: a write would set the mtime to now again) and fsyncs it when asked; returns its
 * fstat when `wantStats` (to pin it). The file must be empty (new).
 */
export async function fillFile (fd: number, data: Buffer, opts: AtomicWriteOptions, wantStats: boolean): Promise<Stats | null> {
  if (data.length > 0) await fdCalls.writeAll(fd, data)
  const t = opts.mtimeMs / 1000
  // Both settle before anything else happens to fd: closing it under a call still in flight
  // could let that call hit whatever file reuses the descriptor number.
  const [statting, timing] = await Promise.allSettled([wantStats ? fdCalls.fstat(fd) : null, fdCalls.futimes(fd, t, t)])
  if (statting.status === 'rejected') throw statting.reason
  if (timing.status === 'rejected') throw timing.reason
  if (opts.fsync) await fdCalls.fsync(fd)
  return statting.value
}

/**
 * Creates `file` 0600. 'wx' is O_CREAT|O_EXCL: an existing name, a symlink included, is EEXIST —
 * never followed. A missing directory (a shard removed by hand) is ENOENT: the store checks and
 * creates it again (file/store-dir.ts), a blind mkdir here could create it through a symlink.
 */
export async function openExclusive (file: string): Promise<number> {
  return await fdCalls.open(file, 'wx', 0o600)
}

const RETRYABLE_ON_WINDOWS = new Set(['EPERM', 'EACCES', 'EBUSY'])

export async function renameWithRetry (from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fdCalls.rename(from, to)
      return
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? ''
      if (process.platform !== 'win32' || !RETRYABLE_ON_WINDOWS.has(code) || attempt >= 4) throw err
      await new Promise((resolve) => setTimeout(resolve, 10 * (attempt + 1)))
    }
  }
}
