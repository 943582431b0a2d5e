/**
 * Big saves refused while this process's V8 heap is close to its cap: a 503 (Retry-After) for that
 * request instead of the worker aborting with "JavaScript heap out of memory" and every request in
 * it reset.
 *
 * Why: a save holds a session several times over while it runs (the request body, the member JSON,
 * the whole record; ~0.75 MB of heap for a 250 KB session), and every request in flight does at
 * once. The session-size limit bounds one save, not how many run together: 230 users saving 250 KB
 * sessions at once on a cluster of 2 at the default budget (150 MB heap each) put a worker over its
 * cap in one run of test/cluster-big-sessions.test.ts while the memory budget was replacing it.
 * The budget's replacement (0.7 of the cap, 2 samples) is the remedy for a process that stays big;
 * this is the valve for the seconds before it lands.
 *
 * Cost: a cached reading, refreshed at most every REFRESH_MS (getHeapStatistics: ~1 µs); only when
 * the heap is near its cap is the session's size estimated (size-limit.ts sizeSurelyOver, string
 * lengths, no serialization). Small saves are never refused: they are what keeps users logged in.
 */
import { ownHeap, type HeapUse } from '../system/process-memory'

/** Share of the heap cap above which big saves are refused. */
export const NEAR_CAP_SHARE = 0.85
/** A save at least this big (UTF-8 bytes of its JSON, estimated) is "big". */
export const BIG_SAVE_BYTES = 64 * 1024
const REFRESH_MS = 100

export class MemoryPressureError extends Error {
  readonly statusCode = 503
  readonly code = 'FST_SESSION_MEMORY_PRESSURE'
  readonly headers: Record<string, string> = { 'retry-after': '1' }

  constructor () {
    // What the client sees: no sizes of this process, only that it may retry.
    super('Server busy: session not saved, retry shortly')
    this.name = 'MemoryPressureError'
  }
}

export interface HeapReading { usedShare: number, usedMb: number, limitMb: number }

export class HeapPressure {
  private checkedAt = Number.NEGATIVE_INFINITY
  private reading: HeapReading = { usedShare: 0, usedMb: 0, limitMb: 0 }

  /** `read`: the heap's use and the old-space cap it aborts at (process-memory.ts; not heap_size_limit, which adds the young generation). */
  constructor (private readonly read: () => HeapUse = ownHeap, private readonly now: () => number = Date.now) {}

  /** The heap's use now (at most REFRESH_MS old) when it is above NEAR_CAP_SHARE of the cap; null otherwise. */
  nearCap (): HeapReading | null {
    const now = this.now()
    if (now - this.checkedAt >= REFRESH_MS) {
      this.checkedAt = now
      const h = this.read()
      this.reading = { usedShare: h.usedMb / h.limitMb, usedMb: h.usedMb, limitMb: h.limitMb }
    }
    return this.reading.usedShare > NEAR_CAP_SHARE ? this.reading : null
  }
}
