/**
 * The store directory and its 16 shard directories must be ours before anything is read from or
 * written into them (issue 10: a local user who pre-created the default directory under /tmp, with
 * world-writable shards, kept owning them; a root server used them, so that user could list the
 * session ids, forge a session and delete others'; shards were never checked, and root skipped the
 * owner check).
 *
 * "Ours", for the top directory and for every shard, checked on a descriptor opened with
 * O_DIRECTORY | O_NOFOLLOW (so what is checked is what is used, never a symlink's target):
 *   - a directory, not a symbolic link;
 *   - owned by this process's effective uid — root included, with no exemption;
 *   - nobody else may write into it (no group/other write bit). A directory of ours that others
 *     may only read or list (0755, the umask default) is tightened to 0700 with one warning: no one
 *     else can have changed anything in it.
 * A missing one is created 0700. Anything else throws ForeignDirectoryError, whose message is one
 * line naming the knob (SESSION_DIR or `option dir`), the path, what is wrong and what is accepted.
 *
 * Synchronous on purpose: it runs at boot, before the first request; a failure must fail the boot
 * with a clear message rather than turn every later request into a 503.
 */
import fs from 'node:fs'
import path from 'node:path'

export interface DirLog { warn (msg: string): void }

export const DIRECTORY_ACCEPTED = 'a directory owned by this process\'s user, not a symbolic link, writable by that user only (chmod 700), or a path that does not exist yet (it is created 0700)'

/** A directory that exists but is not ours (see the header); `reason` says what is wrong. */
export class ForeignDirectoryError extends Error {
  readonly code = 'ERR_SESSION_DIR_FOREIGN'
  constructor (readonly where: string, readonly dir: string, readonly reason: string) {
    super(`${where}=${dir} cannot be used: ${reason}; accepted: ${DIRECTORY_ACCEPTED}`)
    this.name = 'ForeignDirectoryError'
  }
}

const O_DIRECTORY_NOFOLLOW = fs.constants.O_RDONLY | (fs.constants.O_DIRECTORY ?? 0) | (fs.constants.O_NOFOLLOW ?? 0)
const checksOwner = process.platform !== 'win32' && typeof process.geteuid === 'function'

/**
 * Opens the directory `file` (creating it 0700 when missing, its parents too with `parents`) and
 * returns its descriptor once it is proven ours; throws ForeignDirectoryError otherwise. `shown` is
 * the name used in messages (the real path when `file` goes through /proc/self/fd). `fix` false:
 * only look (nothing created, nothing tightened).
 */
export function openOwnDirectory (file: string, shown: string, where: string, log: DirLog | undefined, parents = false, fix = true): number {
  if (fix) {
    try {
      fs.mkdirSync(file, { recursive: parents, mode: 0o700 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  let fd: number
  try {
    fd = fs.openSync(file, O_DIRECTORY_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // With O_DIRECTORY, Linux answers ENOTDIR (not ELOOP) for a symlink: lstat tells which.
    if (code === 'ELOOP' || (code === 'ENOTDIR' && isLink(file))) throw new ForeignDirectoryError(where, shown, 'it is a symbolic link')
    if (code === 'ENOTDIR') throw new ForeignDirectoryError(where, shown, 'it is not a directory')
    throw err
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isDirectory()) throw new ForeignDirectoryError(where, shown, 'it is not a directory')
    if (checksOwner) {
      const uid = process.geteuid!()
      if (st.uid !== uid) throw new ForeignDirectoryError(where, shown, `it is owned by uid ${st.uid}, not by this process's uid ${uid}`)
      const mode = st.mode & 0o777
      if ((mode & 0o022) !== 0) throw new ForeignDirectoryError(where, shown, `its mode ${octal(mode)} lets other users write into it`)
      if ((mode & 0o077) !== 0 && fix) {
        fs.fchmodSync(fd, 0o700)
        log?.warn(`session directory ${shown} had permissions ${octal(mode)}; tightened to 0700 (sessions are readable by their owner only)`)
      }
    }
    return fd
  } catch (err) {
    fs.closeSync(fd)
    throw err
  }
}

/**
 * Why `dir` (and its existing shards) could not be used, without creating or changing anything;
 * null when it is ours or does not exist yet. For the launcher's primary, which decides where its
 * workers' default directory goes before any of them opens it (default-dir.ts).
 */
export function foreignReason (dir: string, shards: readonly string[]): string | null {
  try {
    fs.lstatSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  for (const [file, shown] of [[dir, dir], ...shards.map((s) => [path.join(dir, s), path.join(dir, s)])]) {
    if (file !== dir && !fs.existsSync(file) && !isLink(file)) continue
    try {
      fs.closeSync(openOwnDirectory(file, shown, '', undefined, false, false))
    } catch (err) {
      if (err instanceof ForeignDirectoryError) return file === dir ? err.reason : `its shard ${shown}: ${err.reason}`
      throw err
    }
  }
  return null
}

function isLink (file: string): boolean {
  try { return fs.lstatSync(file).isSymbolicLink() } catch { return false }
}

function octal (mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

/** `dir` made absolute, as every later message and path uses it. */
export function absoluteDir (dir: string): string {
  return path.resolve(dir)
}
