import { StoreUnavailableError } from './errors'

/**
 * Bound a store operation: resolve/reject like `promise`, or reject with StoreUnavailableError
 * after `ms`.
 *
 * Why our own timer and not only the client's settings: a client the user shares with us may be
 * configured to wait forever (BullMQ needs `maxRetriesPerRequest: null`, bullmq#1331), ioredis
 * defaults hang 7–160 s on a dead server and forever on a frozen one (research §3.3 L1/L2,
 * ioredis#634). The design promise "a session read or write never waits longer than its timeout"
 * therefore cannot depend on how the client was built.
 *
 * The late outcome of `promise` is swallowed (no unhandledRejection), and failures of `promise`
 * itself are passed through unchanged so the caller can classify them.
 */
export function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      reject(new StoreUnavailableError(new TimeoutError(what, ms)))
    }, ms)
    promise.then((value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(value)
    }, (err: unknown) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** The `cause` of a timed-out operation: names the operation, never a key or a URL. */
export class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT'
  constructor (what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`)
    this.name = 'TimeoutError'
  }
}
