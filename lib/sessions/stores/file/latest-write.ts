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
 *
 * Patches (issue 14) are not replacements: two waiting patches of different members must both
 * land. `combine` folds a newer waiting value into the one already waiting (default: the newer
 * replaces it), so the waiting callers still share one write whose effect is all of theirs in
 * arrival order; they all get its result.
 */
export type WriteFn<T, R> = (key: string, value: T) => Promise<R>

interface Waiting<T, R> {
  value: T
  done: Promise<R>
  resolve: (result: R) => void
  reject: (err: unknown) => void
}

export class LatestWriteQueue<T, R = void> {
  /** key → the write waiting for the running one (null: none waiting). A key is here while a write of it runs. */
  private readonly running = new Map<string, Waiting<T, R> | null>()

  constructor (private readonly write: WriteFn<T, R>, private readonly combine: (older: T, newer: T) => T = (_older, newer) => newer) {}

  submit (key: string, value: T): Promise<R> {
    if (!this.running.has(key)) {
      this.running.set(key, null)
      return this.run(key, value)
    }
    const waiting = this.running.get(key)
    if (waiting != null) {
      waiting.value = this.combine(waiting.value, value) // one write carries both
      return waiting.done
    }
    const next = deferred<T, R>(value)
    this.running.set(key, next)
    return next.done
  }

  /** Keys with a write running (for tests and diagnostics). */
  get size (): number {
    return this.running.size
  }

  private async run (key: string, value: T): Promise<R> {
    try {
      return await this.write(key, value)
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

function deferred<T, R> (value: T): Waiting<T, R> {
  let resolve!: (result: R) => void
  let reject!: (err: unknown) => void
  const done = new Promise<R>((res, rej) => { resolve = res; reject = rej })
  return { value, done, resolve, reject }
}
