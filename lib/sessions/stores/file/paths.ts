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
import { isValidSessionId } from '../types'

export interface SessionPaths {
  /** `<dir>/<id>.json`: the record; its mtime is the expiry (see file.ts). */
  record: string
  /** `<dir>/<id>.gone`: the tombstone left by destroy; its mtime is when it lapses. */
  tombstone: string
}

export const RECORD_EXT = '.json'
export const TOMBSTONE_EXT = '.gone'

/** Names the store writes: `<id>.json`, `<id>.gone`. Anything else in the directory is left alone. */
export const OWNED_NAME = /^[A-Za-z0-9_-]{16,128}\.(json|gone)$/
/** Temp files: `<final name>.<pid>.<hex>.tmp` (atomic.ts) and `.check.<pid>.<hex>.tmp` (check()). */
export const TEMP_NAME = /^(?:[A-Za-z0-9_-]{16,128}\.(?:json|gone)|\.check)\.\d+\.[0-9a-f]{8,}\.tmp$/

/** `null` when the id must not reach the filesystem. `dir` must already be absolute (resolved). */
export function sessionPaths (dir: string, id: unknown): SessionPaths | null {
  if (!isValidSessionId(id)) return null
  // Concatenation, not path.resolve (this runs for every store call): the allow-list admits no
  // separator, dot or NUL. The dirname check stays as the independent second guard: dirname does
  // not normalise, so an id with '/' or '..' in it would not have `dir` as its dirname.
  const base = (dir.endsWith(path.sep) ? dir : dir + path.sep) + id
  const record = base + RECORD_EXT
  if (path.dirname(record) !== dir) return null
  return { record, tombstone: base + TOMBSTONE_EXT }
}
