/**
 * One writer at a time per session record, across the processes that share the store directory
 * (the workers of one host): a patch reads the record, merges, and renames the result into place,
 * and another process's write in between would be undone by that rename (issue 14).
 *
 * The lock file `<shard>/<id>.lock` is also the new record: created with O_CREAT|O_EXCL (atomic on
 * a local filesystem; it never follows a symlink: an existing name, link or not, is EEXIST) and
 * kept open; once the holder has read and merged the stored record, the new record is written into
 * it and the lock file is renamed over the record (`publish`): the record appears and the lock is
 * released in one rename (git's index.lock pattern). A save is then a create, the record's write,
 * its mtime and a rename; a separate lock file holding the owner's pid cost four calls more (the
 * pid's write, its close, the temp file's create, the lock's unlink; measured: /rmw at 0.72-0.86x
 * of the build before locks, see the README's benchmark notes). Within one process the write queue
 * (latest-write.ts) already serialises writes of one id, so only processes contend, and briefly:
 * a holder keeps it for one stat + one write.
 *
 * Bounded: a waiter retries with a short exponential backoff (1 ms doubling to 16 ms, jittered)
 * and gives up with LockTimeoutError after `timeoutMs` (the store's operation timeout), so a save
 * never waits longer than any other store operation.
 *
 * A holder that died (crash, SIGKILL mid-write) leaves its lock behind. A holder keeps its lock
 * file open until it is renamed, so a waiter that has waited STALE_CHECK_AFTER_MS for a lock file
 * unchanged for SCAN_AFTER_MS (200 ms) asks whether any process still has that file open (open-anywhere.ts,
 * /proc; one scan per lock file and process): if none does, the lock is broken at once. A lock older than `staleMs` (2 × timeoutMs + 1 s) is broken
 * whatever that says (no /proc; a holder in another pid namespace). A live holder never holds that
 * long: it checks its lease (`assertHeld`, at most timeoutMs) right before publishing and gives up
 * instead. A lock holding a pid was written by an earlier version of this store (during a rolling
 * upgrade): its owner is judged by that pid, as that version did.
 *
 * Breaking renames the lock aside and checks it moved the very file it judged stale; if a new
 * holder's lock was moved instead (it took the lock in between), it is linked back. What is left is
 * a holder that stalls for seconds between its lease check and its rename while its lock is broken
 * and taken: its rename then publishes the new holder's lock file, which becomes the record that
 * holder is writing (its own publish then finds its file already in place); a read in that instant
 * may see that record unfinished, which reads as a miss (envelope.ts), never as wrong data. At worst
 * one lost update, never a torn record.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { promisify } from 'node:util'
import * as fdCalls from './fd-calls'
import { openExclusive, renameWithRetry } from './atomic'
import { isOpenAnywhere } from './open-anywhere'

const FIRST_DELAY_MS = 1
const MAX_DELAY_MS = 16
/** A live holder keeps the lock ~1 ms; only a lock seen for this long is looked at closely. */
const STALE_CHECK_AFTER_MS = 20
/**
 * …and only a lock file unchanged this long is looked for in every process (open-anywhere.ts):
 * long enough that holders descheduled on a loaded machine are rarely scanned for (each scan costs
 * the waiter's process a few ms), short against the store timeout (1 s by default).
 */
const SCAN_AFTER_MS = 200

const link = promisify(fs.link)

/** The `cause` of a save that could not get its session's lock in time. */
export class LockTimeoutError extends Error {
  readonly code = 'ETIMEDOUT'
  constructor (ms: number) {
    super(`session record lock not acquired within ${ms} ms`)
    this.name = 'LockTimeoutError'
  }
}

export interface HeldLock {
  /** The lock file, open for writing and empty: the new record is written into it, then published. */
  readonly fd: number
  /** Throws LockTimeoutError when held longer than the lease (then nothing may be published). */
  assertHeld (): void
  /**
   * Renames the lock file over `target`: the record it now holds appears and the lock is released
   * in one step. Afterwards `fd` is the caller's, to close or pin.
   */
  publish (target: string): Promise<void>
  /** Gives the lock up without publishing: closes `fd` and removes the lock file. */
  release (): Promise<void>
}

export async function lockRecord (file: string, timeoutMs: number): Promise<HeldLock> {
  const started = Date.now()
  let delay = FIRST_DELAY_MS
  /** Lock files this waiter found open in a live process: not looked for again. */
  const seenHeld = new Set<string>()
  for (;;) {
    const fd = await tryCreate(file)
    if (fd !== null) return held(file, fd, Date.now(), timeoutMs)
    const waited = Date.now() - started
    if (waited >= STALE_CHECK_AFTER_MS && await breakIfStale(file, 2 * timeoutMs + 1000, seenHeld)) continue
    if (waited + delay > timeoutMs) throw new LockTimeoutError(timeoutMs)
    await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())))
    delay = Math.min(delay * 2, MAX_DELAY_MS)
  }
}

function held (file: string, fd: number, since: number, leaseMs: number): HeldLock {
  let open = true
  return {
    fd,
    assertHeld () {
      if (Date.now() - since > leaseMs) throw new LockTimeoutError(leaseMs)
    },
    async publish (target: string) {
      await publishLock(file, target, fd, since + leaseMs)
      open = false
    },
    async release () {
      if (!open) return
      open = false
      // The name is removed only while it is still our file (it may have been broken and taken).
      const ours = await isNamedBy(file, fd).catch(() => false)
      await fdCalls.close(fd).catch(() => {})
      if (ours) {
        await fdCalls.unlink(file).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err
        })
      }
    }
  }
}

/**
 * Renames our lock file `file` over `target`. ENOENT has two innocent causes: a holder that stalled
 * past its lease published our file for us (it is the record now: done), or a waiter breaking what
 * it took for an abandoned lock moved our file aside for an instant and is linking it back (wait
 * for it, until `deadline`). Our file unlinked everywhere means the lock was broken: nothing is
 * published and the save fails.
 */
async function publishLock (file: string, target: string, fd: number, deadline: number): Promise<void> {
  for (;;) {
    try {
      await renameWithRetry(file, target)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      if (await isNamedBy(target, fd)) return
      // Renamed again only once the lock name is our file again (another holder's would be published).
      do {
        if ((await fdCalls.fstat(fd)).nlink === 0 || Date.now() > deadline) throw err
        await new Promise((resolve) => setTimeout(resolve, 1))
      } while (!await isNamedBy(file, fd))
    }
  }
}

/** Is `name` (never followed) the file open as `fd`? */
async function isNamedBy (name: string, fd: number): Promise<boolean> {
  const [mine, named] = await Promise.all([fdCalls.fstat(fd), fdCalls.lstat(name).catch(() => null)])
  return named !== null && named.ino === mine.ino && named.dev === mine.dev
}

/** The created lock's descriptor (ours, kept open: see the header), or null when someone holds it. */
async function tryCreate (file: string): Promise<number | null> {
  try {
    return await openExclusive(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null
    // ENOENT: its shard directory was removed by hand; the store checks and creates it again
    // (file/store-dir.ts) and retries.
    throw err
  }
}

/** Breaks the lock if its holder is gone or it is older than `staleMs`; true when it is gone now. */
async function breakIfStale (file: string, staleMs: number, seenHeld: Set<string>): Promise<boolean> {
  let seen: fs.Stats
  let owner: number
  try {
    seen = await fdCalls.lstat(file)
    owner = await readOwner(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  const age = Date.now() - seen.ctimeMs
  if (age < staleMs && !await isAbandoned(file, seen, owner, age, seenHeld)) return false
  const aside = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await fdCalls.rename(file, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  const moved = await fdCalls.lstat(aside)
  if (moved.ino !== seen.ino || moved.dev !== seen.dev) await link(aside, file).catch(() => {})
  await fdCalls.unlink(aside).catch(() => {})
  return true
}

/** Is this (not yet stale) lock certainly without a live holder? */
async function isAbandoned (file: string, seen: fs.Stats, owner: number, age: number, seenHeld: Set<string>): Promise<boolean> {
  // An earlier version's lock: its pid is its owner.
  if (Number.isSafeInteger(owner) && owner > 0) return !isAlive(owner)
  if (age < SCAN_AFTER_MS) return false
  const key = `${seen.dev}:${seen.ino}`
  if (seenHeld.has(key)) return false
  const open = await scanOnce(key, seen)
  if (open === true) seenHeld.add(key)
  if (open !== false) return false
  // Its holder may have published it and closed it during the scan: then the name is another file
  // (or none) now, and that one is not judged.
  const again = await fdCalls.lstat(file).catch(() => null)
  return again !== null && again.ino === seen.ino && again.dev === seen.dev
}

/** Scans in flight, by lock file: the waiters of one process share one. */
const scans = new Map<string, Promise<boolean | null>>()

async function scanOnce (key: string, file: fs.Stats): Promise<boolean | null> {
  let scan = scans.get(key)
  if (scan === undefined) {
    scan = isOpenAnywhere(file).finally(() => scans.delete(key))
    scans.set(key, scan)
  }
  return await scan
}

/**
 * The pid in a lock written by an earlier version of this store (NaN for ours: empty, or a record
 * being written); never follows a symlink planted in its place (ELOOP: the save fails).
 */
async function readOwner (file: string): Promise<number> {
  const fd = await fdCalls.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  try {
    const text = (await fdCalls.readHead(fd, 16)).toString('latin1')
    return /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN
  } finally {
    await fdCalls.close(fd).catch(() => {})
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
