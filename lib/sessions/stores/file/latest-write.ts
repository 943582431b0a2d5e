/**
 * Writes of one key, in one process, in order, newest wins: at most one write per key runs at a
 * time; writes that arrive meanwhile wait, and of those only the newest is carried out — every
 * waiting caller completes when it lands (or fails with its error).
 *
 * Why for session records: a record write replaces the whole session, so writing only the newest
 * of several overlapping writes leaves exactly the file that writing them all, in arrival order,
 * would leave; each caller still returns only after a write issued no earlier than its own is on
 * disk. It is what a browser needs when a page fires parallel requests that each save the
 * session (@fastify/session saves a whole modified session per request):
 *   - order: unqueued, two overlapping writes of one id could land in either order, leaving the
 *     older state on disk;
 *   - cost: a record write is a temp file renamed over the old one, and on ext4 that rename
 *     flushes the new file's data while holding the directory's lock (auto_da_alloc; ~110 µs of
 *     kernel CPU per write measured here), so N parallel saves used to cost N such renames
 *     queued behind one another; now at most two per burst.
 * Across processes nothing changes: each worker's writes are still separate atomic renames.
 */
export type WriteFn<T> = (key: string, value: T) => Promise<void>

interface Waiting<T> {
  value: T
  done: Promise<void>
  resolve: () => void
  reject: (err: unknown) => void
}

export class LatestWriteQueue<T> {
  /** key → the write waiting for the running one (null: none waiting). A key is here while a write of it runs. */
  private readonly running = new Map<string, Waiting<T> | null>()

  constructor (private readonly write: WriteFn<T>) {}

  submit (key: string, value: T): Promise<void> {
    if (!this.running.has(key)) {
      this.running.set(key, null)
      return this.run(key, value)
    }
    const waiting = this.running.get(key)
    if (waiting != null) {
      waiting.value = value // the older waiting value is never written: this one replaces it
      return waiting.done
    }
    const next = deferred(value)
    this.running.set(key, next)
    return next.done
  }

  /** Keys with a write running (for tests and diagnostics). */
  get size (): number {
    return this.running.size
  }

  private async run (key: string, value: T): Promise<void> {
    try {
      await this.write(key, value)
    } finally {
      const next = this.running.get(key)
      if (next == null) {
        this.running.delete(key)
      } else {
        this.running.set(key, null)
        this.run(key, next.value).then(next.resolve, next.reject)
      }
    }
  }
}

function deferred<T> (value: T): Waiting<T> {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const done = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  return { value, done, resolve, reject }
}
