/**
 * One writer at a time per session record, across the processes that share the store directory
 * (the workers of one host): a patch reads the record, merges, and renames the result into place,
 * and another process's write in between would be undone by that rename (issue 14).
 *
 * The lock is a file `<shard>/<id>.lock`, created with O_CREAT|O_EXCL (atomic on a local
 * filesystem; it never follows a symlink: an existing name, link or not, is EEXIST) holding the
 * owner's pid, and unlinked when the write is done. Within one process the write queue
 * (latest-write.ts) already serialises writes of one id, so only processes contend, and briefly:
 * a holder keeps it for one read + one atomic write.
 *
 * Bounded: a waiter retries with a short exponential backoff (1 ms doubling to 16 ms, jittered)
 * and gives up with LockTimeoutError after `timeoutMs` (the store's operation timeout), so a save
 * never waits longer than any other store operation.
 *
 * A holder that died (crash, SIGKILL mid-write) leaves its lock behind. A waiter that has waited
 * STALE_CHECK_AFTER_MS reads the owner's pid: a dead owner's lock is broken at once; a lock older
 * than `staleMs` (2 × timeoutMs + 1 s) is broken whatever its pid says (a pid from another pid
 * namespace, or reused). A live holder never holds that long: it checks its lease
 * (`assertHeld`, at most timeoutMs) right before its rename and gives up instead. Breaking renames
 * the lock aside and checks it moved the very file it judged stale; if a new holder's lock was
 * moved instead (it took the lock in between), it is linked back. What is left is a race between
 * two breakers and a new holder at the same instant, after a holder died: at worst one lost
 * update, never a torn record (the record itself is always replaced by an atomic rename).
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { promisify } from 'node:util'
import * as fdCalls from './fd-calls'

const FIRST_DELAY_MS = 1
const MAX_DELAY_MS = 16
/** A live holder keeps the lock ~1 ms; only a lock seen for this long is looked at closely. */
const STALE_CHECK_AFTER_MS = 20

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
  /** Throws LockTimeoutError when held longer than the lease (then nothing may be published). */
  assertHeld (): void
  release (): Promise<void>
}

export async function lockRecord (file: string, timeoutMs: number): Promise<HeldLock> {
  const started = Date.now()
  let delay = FIRST_DELAY_MS
  for (;;) {
    if (await tryCreate(file)) return held(file, Date.now(), timeoutMs)
    const waited = Date.now() - started
    if (waited >= STALE_CHECK_AFTER_MS && await breakIfStale(file, 2 * timeoutMs + 1000)) continue
    if (waited + delay > timeoutMs) throw new LockTimeoutError(timeoutMs)
    await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())))
    delay = Math.min(delay * 2, MAX_DELAY_MS)
  }
}

function held (file: string, since: number, leaseMs: number): HeldLock {
  return {
    assertHeld () {
      if (Date.now() - since > leaseMs) throw new LockTimeoutError(leaseMs)
    },
    async release () {
      await fdCalls.unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
      })
    }
  }
}

/** true: created (ours); false: someone holds it. */
async function tryCreate (file: string): Promise<boolean> {
  let fd: number
  try {
    fd = await fdCalls.open(file, 'wx', 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    // ENOENT: its shard directory was removed by hand; the store checks and creates it again
    // (file/store-dir.ts) and retries.
    throw err
  }
  let written = false
  try {
    await fdCalls.writeAll(fd, Buffer.from(String(process.pid)))
    written = true
  } finally {
    await fdCalls.close(fd).catch(() => {})
    if (!written) await fdCalls.unlink(file).catch(() => {})
  }
  return true
}

/** Breaks the lock if its owner is dead or it is older than `staleMs`; true when it is gone now. */
async function breakIfStale (file: string, staleMs: number): Promise<boolean> {
  let seen: fs.Stats
  let owner: number
  try {
    seen = await fdCalls.lstat(file)
    owner = await readOwner(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  // An empty pid: the owner is between its create and its write (or died there): judge by age.
  const dead = Number.isSafeInteger(owner) && owner > 0 && !isAlive(owner)
  if (!dead && Date.now() - seen.ctimeMs < staleMs) return false
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

/** The pid written in a lock (NaN when empty); never follows a symlink planted in its place. */
async function readOwner (file: string): Promise<number> {
  const fd = await fdCalls.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  try {
    const text = (await fdCalls.readHead(fd, 16)).toString('latin1')
    return text === '' ? Number.NaN : Number(text)
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
