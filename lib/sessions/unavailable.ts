/**
 * What a request gets as `request.session` when its session could not be loaded because the store
 * is down: a stand-in that throws the store's 503 (StoreUnavailableError, with Retry-After) the
 * moment the handler uses it, and is invisible otherwise.
 *
 * @fastify/session loads the session in onRequest for every request that carries the cookie, so
 * without this a browser's cookie would turn every route into a 503 during an outage, including
 * routes that never look at the session (a health page, static assets, a public API). DESIGN.md:
 * "requests that do not use the session keep working".
 */
import type { StoreUnavailableError } from './errors'

/** Read by @fastify/session's onSend to decide whether to save; `undefined` means "nothing to save". */
const SILENT = new Set<PropertyKey>(['sessionId', 'encryptedSessionId', 'then', 'toJSON'])

export function unavailableSession (error: StoreUnavailableError): object {
  return new Proxy(Object.create(null), {
    get (_target, prop) {
      if (typeof prop === 'symbol' || SILENT.has(prop)) return undefined
      throw error
    },
    set () { throw error },
    has () { throw error },
    deleteProperty () { throw error },
    ownKeys () { throw error }
  })
}

/**
 * Store operations that failed, by session id, until the request that asked for them picks them up
 * (the adapter records; the plugin's hooks consume: failed loads in onRequest, failed destroys in
 * onSend). Counted, because concurrent requests with the same cookie fail together; bounded, so a
 * request that never reaches the hook cannot leak.
 */
export class FailedOps<E extends Error = StoreUnavailableError> {
  private readonly pending = new Map<string, { error: E, count: number }>()
  private static readonly MAX = 10_000

  get size (): number { return this.pending.size }

  record (id: string, error: E): void {
    if (this.pending.size >= FailedOps.MAX) this.pending.clear()
    const entry = this.pending.get(id)
    if (entry === undefined) this.pending.set(id, { error, count: 1 })
    else { entry.error = error; entry.count++ }
  }

  take (id: string): E | undefined {
    const entry = this.pending.get(id)
    if (entry === undefined) return undefined
    if (--entry.count === 0) this.pending.delete(id)
    return entry.error
  }
}
