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
 *
 * Memory: the pinned JSON texts are bounded in BYTES, not only in records: 1/32 of this process's
 * V8 heap limit, at most 16 MB (a 200 MB worker, 150 MB heap, pins at most ~5 MB), and a record
 * bigger than 1/16 of that is not pinned at all (it is read again each time). Counting records
 * only, 256 sessions of 600 KB pinned per worker were 150 MB: the whole heap of a default worker
 * (issue 10: both workers of a cluster died of "JavaScript heap out of memory").
 */
import fs, { type Stats } from 'node:fs'
import { getHeapStatistics } from 'node:v8'
import { LRUCache } from 'lru-cache'

/** Descriptors kept per process: the sessions read most recently. */
export const MAX_PINNED_RECORDS = 256
/** …but never more than this share of the process's descriptor limit (sockets need them more). */
const SHARE_OF_FD_LIMIT = 1 / 8
/** Pinned JSON per process: this share of the V8 heap limit… */
const SHARE_OF_HEAP = 1 / 32
/** …and never more than this. */
const MAX_PINNED_BYTES = 16 * 1024 * 1024
/** Bytes counted per pin besides its text (the Pin object, its LRU slot, the descriptor's bookkeeping). */
const PIN_OVERHEAD_BYTES = 256

/** The byte budget of the pinned texts in this process (see the header). */
export function pinnedBytesLimit (heapLimit = getHeapStatistics().heap_size_limit): number {
  return Math.max(64 * 1024, Math.min(MAX_PINNED_BYTES, Math.floor(heapLimit * SHARE_OF_HEAP)))
}

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

  constructor (max = pinnedRecordLimit(), maxBytes = pinnedBytesLimit()) {
    // Every way out of the cache (eviction, replacement, delete, clear) closes the descriptor, once.
    // A pin bigger than maxEntrySize is refused by the cache: pin() closes its descriptor then.
    this.pins = new LRUCache<string, Pin>({
      max,
      maxSize: maxBytes,
      maxEntrySize: Math.max(1, Math.floor(maxBytes / 16)),
      sizeCalculation: pinSize,
      dispose: (pin) => { closeQuietly(pin.fd) }
    })
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
    const pin = { fd, dev: st.dev, ino: st.ino, size: st.size, json }
    if (this.closed || !Number.isSafeInteger(st.ino) || pinSize(pin) > this.pins.maxEntrySize) {
      this.pins.delete(id) // an older pin of this id is no longer the record
      closeQuietly(fd)
      return
    }
    this.pins.set(id, pin)
  }

  /** Bytes the pinned texts take now, as counted against the budget (for tests and diagnostics). */
  get bytes (): number {
    return this.pins.calculatedSize
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

/** A one-byte string of n characters takes n bytes of heap, a two-byte one 2n: count the worst case. */
function pinSize (pin: Pin): number {
  return pin.json.length * 2 + PIN_OVERHEAD_BYTES
}

/** Off the request path: nothing waits for a pin to be released, and it cannot fail usefully. */
function closeQuietly (fd: number): void {
  fs.close(fd, () => {})
}
