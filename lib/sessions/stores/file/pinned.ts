/**
 * Session records this process has read or written, each pinned by an open descriptor, so that
 * reading a session again costs one `stat` of its name instead of open + fstat + read + close
 * (measured: see the README's benchmark notes).
 *
 * Why a stat is proof enough: a record's bytes never change once it is renamed into place —
 * every save writes a new file and renames it over the name (atomic.ts), touch changes only its
 * times, destroy and the reaper only unlink. While we hold a descriptor of inode X, X cannot be
 * freed, so its number cannot be reused by another file; if the name still resolves to the same
 * device and inode, the bytes are still the ones we read. The expiry (mtime) is always taken from
 * that fresh stat, so touches by any worker are seen; a rename or unlink by any worker shows up as
 * another inode or ENOENT, and the record is read again.
 *
 * Costs: up to 256 descriptors per process, fewer under a small RLIMIT_NOFILE (at most 1/8 of it;
 * Node raises the soft limit to the hard one at start), all given back when an open fails with
 * EMFILE/ENFILE; and the blocks of a replaced record stay allocated until its pin is dropped
 * (at the next read of that id or on eviction; a few KB each). Not on Windows, where an open file
 * cannot be renamed over.
 */
import fs, { type Stats } from 'node:fs'
import { LRUCache } from 'lru-cache'

/** Descriptors kept per process: the sessions read most recently. */
export const MAX_PINNED_RECORDS = 256
/** …but never more than this share of the process's descriptor limit (sockets need them more). */
const SHARE_OF_FD_LIMIT = 1 / 8

/** MAX_PINNED_RECORDS, lowered under a small RLIMIT_NOFILE (read from /proc; elsewhere the maximum). */
export function pinnedRecordLimit (limitsFile = '/proc/self/limits'): number {
  try {
    const line = fs.readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = Number(line?.split(/\s{2,}/)[1])
    if (Number.isFinite(soft) && soft > 0) return Math.min(MAX_PINNED_RECORDS, Math.floor(soft * SHARE_OF_FD_LIMIT))
  } catch {}
  return MAX_PINNED_RECORDS
}

interface Pin { fd: number, dev: number, ino: number, size: number, json: string }

export class PinnedRecords {
  private readonly pins: LRUCache<string, Pin>
  private closed = false

  constructor (max = pinnedRecordLimit()) {
    // Every way out of the cache (eviction, replacement, delete, clear) closes the descriptor, once.
    this.pins = new LRUCache<string, Pin>({ max, dispose: (pin) => { closeQuietly(pin.fd) } })
  }

  has (id: string): boolean {
    return this.pins.has(id)
  }

  /** The pinned JSON of `id` if `st` (a fresh stat of its name) is the very file we pinned. */
  lookup (id: string, st: Stats): string | undefined {
    const pin = this.pins.get(id)
    if (pin === undefined) return undefined
    if (pin.ino === st.ino && pin.dev === st.dev && pin.size === st.size) return pin.json
    this.pins.delete(id) // the name points at another file now
    return undefined
  }

  /** Takes ownership of `fd`, a descriptor of the record whose fstat is `st` and content `json`. */
  pin (id: string, fd: number, st: Stats, json: string): void {
    // Inode numbers above 2^53 would compare inexactly as JS numbers: such files are not pinned.
    if (this.closed || !Number.isSafeInteger(st.ino)) {
      closeQuietly(fd)
      return
    }
    this.pins.set(id, { fd, dev: st.dev, ino: st.ino, size: st.size, json })
  }

  drop (id: string): void {
    this.pins.delete(id)
  }

  /** Gives every descriptor back (the process ran out of them: EMFILE). Pins build up again. */
  releaseAll (): void {
    this.pins.clear()
  }

  close (): void {
    this.closed = true
    this.pins.clear()
  }
}

/** Off the request path: nothing waits for a pin to be released, and it cannot fail usefully. */
function closeQuietly (fd: number): void {
  fs.close(fd, () => {})
}
