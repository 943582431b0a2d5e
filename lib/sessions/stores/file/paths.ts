/**
 * Session id → file names inside the store directory, and the names the reaper recognises.
 *
 * The id is validated with isValidSessionId BEFORE any path is built (pitfall 8: session-file-store
 * did `path.join(dir, id + '.json')`, so `get('../x')` read and `destroy('../x')` deleted a file
 * outside its directory, research §4.1; precedent gorilla/sessions#275). The allow-list alone
 * already excludes `/`, `\`, `.` and NUL; the containment check is a second, independent guard in
 * case the allow-list is ever widened.
 */
import path from 'node:path'
import { RefusedSessionIdError, SESSION_ID_CHARS, assertSessionId } from '../types'

export interface SessionPaths {
  /** `<dir>/<shard>/<id>.json`: the record; its mtime is the expiry (see file.ts). */
  record: string
  /** `<dir>/<shard>/<id>.gone`: the tombstone left by destroy; its mtime is when it lapses. */
  tombstone: string
  /** `<dir>/<shard>/<id>.lock`: held while a process writes the record (record-lock.ts). */
  lock: string
}

export const RECORD_EXT = '.json'
export const TOMBSTONE_EXT = '.gone'
export const LOCK_EXT = '.lock'

/**
 * Records live in 16 subdirectories `0`…`f` of the store directory, picked by a hash of the id.
 *
 * Why: every record write ends with a rename over the old file, and a rename holds its
 * directory's lock; on ext4 that includes flushing the new file's data (auto_da_alloc), so with
 * one flat directory all writes of all workers queued on one lock (measured: 3.5k writes/s and
 * ~330 us of CPU per write with 50 writers on 200 sessions, 6-8k/s and ~190-250 us in 16 shards).
 * The hash must never change: a record in another shard is a lost session.
 */
export const SHARD_NAMES: readonly string[] = Array.from({ length: 16 }, (_, i) => i.toString(16))

/** FNV-1a over the id's characters: cheap, stable across processes and versions, well spread. */
export function shardOf (id: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return SHARD_NAMES[(h >>> 0) & 15]
}

/** Names the store writes: `<id>.json`, `<id>.gone`. Anything else in the directory is left alone. */
export const OWNED_NAME = new RegExp(`^${SESSION_ID_CHARS}\\.(json|gone)$`)
/**
 * Temp files: `<final name>.<pid>.<hex>.tmp` (atomic.ts; a broken lock set aside, record-lock.ts),
 * `.check.<pid>.<hex>.tmp` (check()), and record locks `<id>.lock`, which a live writer holds for
 * milliseconds: all reaped once old.
 */
export const TEMP_NAME = new RegExp(`^(?:(?:${SESSION_ID_CHARS}\\.(?:json|gone|lock)|\\.check)\\.\\d+\\.[0-9a-f]{8,}\\.tmp|${SESSION_ID_CHARS}\\.lock)$`)

/**
 * Throws RefusedSessionIdError when the id must not reach the filesystem. `dir` must already be
 * absolute; `shardDir` gives the path of a shard when it is not `<dir>/<shard>` (the store goes
 * through its directory descriptors: store-dir.ts).
 */
export function sessionPaths (dir: string, id: unknown, shardDir?: (shard: string) => string): SessionPaths {
  assertSessionId(id)
  // Concatenation, not path.resolve (this runs for every store call): the allow-list admits no
  // separator, dot or NUL. The dirname check stays as the independent second guard: dirname does
  // not normalise, so an id with '/' or '..' in it would not have the shard as its dirname.
  const shard = shardDir !== undefined ? shardDir(shardOf(id)) : (dir.endsWith(path.sep) ? dir : dir + path.sep) + shardOf(id)
  const base = shard + path.sep + id
  const record = base + RECORD_EXT
  if (path.dirname(record) !== shard) throw new RefusedSessionIdError(id)
  return { record, tombstone: base + TOMBSTONE_EXT, lock: base + LOCK_EXT }
}
