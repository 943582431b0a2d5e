/**
 * Is a file open in any process we can see? Answers whether a record lock (record-lock.ts) still
 * has a live holder: a holder keeps its lock file open from its create to its rename (the new
 * record is written into it), so a lock file nobody has open was left by a process that died.
 *
 * Linux: every process's open descriptors are listed in /proc/<pid>/fd; a stat through one of
 * those links is a stat of the open file, so comparing device and inode needs no path. Processes
 * of other users are unreadable to us (EACCES) and skipped — the store directory is ours alone
 * (dir.ts), so its writers run as us (or as root, who reads them all). Not seen: processes in
 * another pid namespace (a container sharing the directory with the host or another container);
 * the lock's age still breaks it there. Elsewhere, or when /proc cannot be read, the answer is
 * null: the caller judges by age alone.
 *
 * Synchronous calls, in slices: /proc is kernel memory, never a disk; through the thread pool the
 * same scan took 25-37 ms and kept the pool from the store's own writes (80 processes, 624
 * descriptors; synchronously 6-7 ms, most of it in the ~200 stats of readable ones). The event loop is given back every SLICE calls, so a host with many
 * processes delays other requests by a slice at a time, not by the whole scan. It runs only for a
 * lock seen held far longer than a live holder holds one.
 */
import fs from 'node:fs'

/** Synchronous /proc calls between two turns of the event loop. */
const SLICE = 256

export interface FileIdentity { dev: number, ino: number }

export async function isOpenAnywhere (file: FileIdentity, proc = '/proc'): Promise<boolean | null> {
  let pids: string[]
  try {
    // Our own descriptors must be listable, or the answer would be a false "nobody".
    fs.readdirSync(`${proc}/self/fd`)
    pids = fs.readdirSync(proc).filter((name) => /^\d+$/.test(name))
  } catch {
    return null
  }
  let calls = 0
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = fs.readdirSync(`${proc}/${pid}/fd`)
    } catch {
      continue // exited meanwhile, or another user's
    }
    for (const fd of fds) {
      if (++calls % SLICE === 0) await new Promise((resolve) => setImmediate(resolve))
      let st: fs.Stats
      try {
        st = fs.statSync(`${proc}/${pid}/fd/${fd}`)
      } catch (err) {
        // EACCES: a process we may list but not look into (a sandbox's init): none of its files.
        if ((err as NodeJS.ErrnoException).code === 'EACCES') break
        continue // closed meanwhile
      }
      if (st.ino === file.ino && st.dev === file.dev) return true
    }
  }
  return false
}
