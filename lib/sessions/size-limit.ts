/**
 * The session-size limit (knob `session-max-size`, SESSION_MAX_SIZE): the largest session JSON, in
 * UTF-8 bytes, that a save may write — the same for every store, checked before the store sees it.
 *
 * Why: a session is held in memory several times while a request saves it (the object, its JSON,
 * the bytes written), and by every request in flight; unbounded, a few users with multi-megabyte
 * sessions filled both heaps of a default cluster (issue 10: 40 users × 5 MB killed both workers).
 * Refusing the one oversized save fails that request only (413 + one log line); the session keeps
 * its previous stored state and other users are not affected.
 *
 * Stores that build a record themselves (a merge of concurrent writes) check the result with
 * sessionTooLarge() too, so no path writes a record above the limit.
 */

export class SessionTooLargeError extends Error {
  readonly statusCode = 413
  readonly code = 'FST_SESSION_TOO_LARGE'
  /** UTF-8 bytes of the session JSON that was refused (a lower bound unless `exact`). */
  readonly bytes: number
  readonly exact: boolean
  readonly limit: number

  constructor (bytes: number, limit: number, exact = true) {
    // The message is what the client sees (a 4xx body): no data, only the sizes.
    super(`Session too large to save: ${exact ? '' : 'at least '}${bytes} bytes, limit ${limit} bytes`)
    this.name = 'SessionTooLargeError'
    this.bytes = bytes
    this.exact = exact
    this.limit = limit
  }

  /** `5242951 bytes` or `at least 5242880 bytes`. */
  get size (): string {
    return `${this.exact ? '' : 'at least '}${this.bytes} bytes`
  }
}

/** Nodes looked at by surelyLarger before it gives up (then the JSON is measured instead). */
const MAX_NODES = 10_000

/**
 * A lower bound (> `limit`) of the JSON size of `data`'s own properties (except `skip`) when it is
 * certainly longer than `limit` UTF-8 bytes, judged from string lengths alone — no serialization;
 * 0 otherwise. Lets a multi-megabyte session be
 * refused without first building its multi-megabyte JSON (measured: 5 MB costs ~45 ms to stringify
 * and ~8 ms to count, per save attempt). A lower bound only: every string and key of the JSON is at
 * least as many UTF-8 bytes as it has UTF-16 units; objects with a toJSON method (Dates, Buffers,
 * anything custom) and values JSON leaves out count nothing. 0 means "measure the JSON".
 */
export function sizeSurelyOver (data: Record<string, unknown>, limit: number, skip: string): number {
  let total = 0
  let nodes = 0
  const stack: unknown[] = []
  for (const key of Object.keys(data)) {
    if (key !== skip) { total += key.length; stack.push(data[key]) }
  }
  while (stack.length > 0) {
    if (total > limit) return total
    if (++nodes > MAX_NODES) return 0
    const value = stack.pop()
    if (typeof value === 'string') { total += value.length; continue }
    if (typeof value !== 'object' || value === null || typeof (value as { toJSON?: unknown }).toJSON === 'function') continue
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item)
      continue
    }
    for (const key of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[key]
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue
      total += key.length
      stack.push(item)
    }
  }
  return total > limit ? total : 0
}

/** The error to fail the save with, or null when `json` fits in `limit` bytes. */
export function sessionTooLarge (json: string, limit: number): SessionTooLargeError | null {
  // A string of n UTF-16 units is at most 3n UTF-8 bytes and at least n: skip the count when it
  // cannot matter (the common case, small sessions, costs one comparison).
  if (json.length * 3 <= limit) return null
  if (json.length > limit) return new SessionTooLargeError(Buffer.byteLength(json, 'utf8'), limit)
  const bytes = Buffer.byteLength(json, 'utf8')
  return bytes > limit ? new SessionTooLargeError(bytes, limit) : null
}
