/**
 * Session files of another store at the top of the directory, told apart from ours (issue 11).
 *
 * session-file-store keeps its sessions as `<dir>/<id>.json` (plain JSON); this store writes its
 * records into shards (`<dir>/<s>/<id>.json`) with the `fps1` envelope (envelope.ts), and before the
 * shards it wrote `<dir>/<id>.json` too, which the reaper still removes once expired. By name the
 * two are the same, and session-file-store's files have their last write as mtime, which reads as
 * "expired" here: pointed at session-file-store's directory, the reaper deleted all of them on its
 * first pass, and nothing said that they were not read. Now only a file that starts with our
 * envelope is one of ours; any other is another store's — never read, never reaped — and the boot
 * says so once, naming the directory and the migration guide.
 */
import fs from 'node:fs'
import { hasRecordMagic, RECORD_MAGIC_BYTES } from './envelope'
import { OWNED_NAME } from './paths'
import { NOFOLLOW, READ_NOFOLLOW, close, open, readHead } from './fd-calls'

export interface OtherStoresLog { warn (msg: string): void }

/** Top-level files opened to look at their first bytes at boot, at most (the count is then "at least"). */
const MAX_BOOT_CHECKS = 1000
/** O_NONBLOCK: a FIFO planted under a record's name must not hang the check. */
const READ_HEAD = READ_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0)

/** A top-level record name (`<id>.json`): the only name another store's session can share with ours. */
export function isTopRecordName (name: string): boolean {
  return name.endsWith('.json') && OWNED_NAME.test(name)
}

/** Does the regular file at `file` start with our record envelope? (Never follows a link; false when unreadable.) */
export async function isOwnRecordFile (file: string): Promise<boolean> {
  let fd: number
  try {
    fd = await open(file, READ_HEAD)
  } catch {
    return false
  }
  try {
    return hasRecordMagic(await readHead(fd, RECORD_MAGIC_BYTES))
  } catch {
    return false
  } finally {
    await close(fd).catch(() => {})
  }
}

function isOwnRecordFileSync (file: string): boolean {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0))
  } catch {
    return false
  }
  try {
    const head = Buffer.alloc(RECORD_MAGIC_BYTES)
    const n = fs.readSync(fd, head, 0, head.length, 0)
    return hasRecordMagic(head.subarray(0, n))
  } catch {
    return false
  } finally {
    try { fs.closeSync(fd) } catch {}
  }
}

/** Directories already warned about in this process (the boot check and the reaper share it). */
const warned = new Set<string>()

/** One warning per directory and process: what is there, that it is not read, and what to do. */
export function warnOtherStoreFiles (log: OtherStoresLog | undefined, dir: string, count: number, atLeast = false): void {
  if (log === undefined || count === 0 || warned.has(dir)) return
  warned.add(dir)
  log.warn(`session directory ${dir} holds ${atLeast ? 'at least ' : ''}${count} session file${count === 1 ? '' : 's'} of another store at its top level ` +
    '(`<id>.json` without this store\'s record header: session-file-store keeps its sessions that way); this store does not read them, ' +
    'so those sessions do not carry over (their users log in again), and leaves them alone (never reaped). ' +
    'To keep them, see the README, "Migrating from session-file-store"')
}

/**
 * At boot: counts another store's session files at the top of the directory (`top`: its path, or
 * /proc/self/fd/<n>) and warns once. Synchronous like the directory checks it follows; a readdir of
 * the top directory (17 entries normally) and, only when names match, a read of a few bytes each.
 */
export function checkTopForOtherStores (top: string, shown: string, log: OtherStoresLog | undefined): number {
  let names: string[]
  try {
    names = fs.readdirSync(top, { withFileTypes: true }).filter((e) => e.isFile() && isTopRecordName(e.name)).map((e) => e.name)
  } catch {
    return 0
  }
  const checked = names.slice(0, MAX_BOOT_CHECKS)
  const others = checked.filter((name) => !isOwnRecordFileSync(`${top}/${name}`)).length
  warnOtherStoreFiles(log, shown, others, names.length > checked.length)
  return others
}
