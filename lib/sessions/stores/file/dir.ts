/**
 * The store directory: created 0700 (recursive), an existing one with looser permissions tightened
 * to 0700 with one warning (DESIGN "Behaviour every store shares"; pitfall 9: with the umask
 * defaults session-file-store got a 0755 directory and 0644 files, research §4.1 L13).
 *
 * Synchronous on purpose: it runs once, at boot, before the first request, and a failure (not a
 * directory, owned by someone else, not writable) must fail the boot with a clear message rather
 * than turn every later request into a 503.
 */
import fs from 'node:fs'
import path from 'node:path'
import { SHARD_NAMES } from './paths'

export interface DirLog { warn (msg: string): void }

export function prepareDirectory (dir: string, log: DirLog | undefined): string {
  const abs = path.resolve(dir)
  fs.mkdirSync(abs, { recursive: true, mode: 0o700 })
  const st = fs.statSync(abs)
  if (!st.isDirectory()) throw new Error(`session directory ${abs} is not a directory`)
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined
  // Another user's directory (e.g. pre-created under /tmp to plant or read sessions): refuse.
  // root may use any directory (volumes mounted with another owner in containers).
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    throw new Error(`session directory ${abs} is owned by uid ${st.uid}, not by this process (uid ${uid}); accepted: a directory owned by uid ${uid}`)
  }
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    fs.chmodSync(abs, 0o700)
    log?.warn(`session directory ${abs} had permissions ${(st.mode & 0o777).toString(8).padStart(4, '0')}; tightened to 0700 (sessions are readable by their owner only)`)
  }
  fs.accessSync(abs, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK)
  // The shard subdirectories (paths.ts). A shard removed later is created again by the next write
  // into it (atomic.ts).
  for (const shard of SHARD_NAMES) fs.mkdirSync(path.join(abs, shard), { recursive: true, mode: 0o700 })
  return abs
}
