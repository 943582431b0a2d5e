/**
 * The file store's per-request filesystem calls: Node's callback API on plain file descriptors,
 * promisified.
 *
 * Why not `fs.promises`: every FileHandle call costs ~10 µs more CPU (handle object, close
 * tracking, extra promise layers). Measured on a session read (open, fstat, read, close), server
 * CPU per request: FileHandle 134 µs, these 95 µs. Still the thread pool: a slow disk delays
 * its own request, never the event loop (synchronous calls would cost 66 µs, but freeze every
 * request of the worker while the disk stalls).
 *
 * A raw descriptor has no garbage-collection safety net: callers close it in `finally`, or hand
 * it to PinnedRecords (pinned.ts), which closes it exactly once when the pin goes.
 */
import fs from 'node:fs'
import { promisify } from 'node:util'

export const open = promisify(fs.open)
export const close = promisify(fs.close)
export const fstat = promisify(fs.fstat)
export const futimes = promisify(fs.futimes)
export const fsync = promisify(fs.fsync)
export const mkdir = promisify(fs.mkdir)
export const rename = promisify(fs.rename)
export const stat = promisify(fs.stat)
export const lstat = promisify(fs.lstat)
export const readdir = promisify(fs.readdir)
export const unlink = promisify(fs.unlink)
export const utimes = promisify(fs.utimes)
/** Sets the times of the name itself: a symlink's own, never its target's (touch, file.ts). */
export const lutimes = promisify(fs.lutimes)

/** open() flags that never follow a symlink as the last component (0 where the OS has none). */
export const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0
export const READ_NOFOLLOW = fs.constants.O_RDONLY | NOFOLLOW

const readAt = promisify(fs.read)
const writeAt = promisify(fs.write)

/** Reads up to `length` bytes from offset 0; fewer when the file is shorter. */
export async function readHead (fd: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length)
  let filled = 0
  while (filled < length) {
    const { bytesRead } = await readAt(fd, buffer, filled, length - filled, filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return buffer.subarray(0, filled)
}

/** Writes all of `data` from offset 0 (a regular file may still take it in several writes). */
export async function writeAll (fd: number, data: Buffer): Promise<void> {
  let written = 0
  while (written < data.length) {
    const { bytesWritten } = await writeAt(fd, data, written, data.length - written, written)
    written += bytesWritten
  }
}
