/**
 * A @fastify/session / express-session store (connect-pg-simple, connect-mongo, connect-redis,
 * session-file-store, express-session's MemoryStore, a hand-written one…) behind our store
 * contract, so it gets what the plugin gives every store: every call bounded by the store timeout
 * and a failure answered 503 (the adapter), sliding expiry by touch, read-only requests that never
 * rewrite, and a JSON round trip (no live objects shared with the store).
 *
 * The store API (express-session README "Session Store Implementation"): `get(sid, cb)`,
 * `set(sid, session, cb)`, `destroy(sid, cb)` required, `touch(sid, session, cb)` recommended.
 * Callbacks; a store that (also) returns a promise is settled by whichever comes first. A `get`
 * error with `code: 'ENOENT'` means "no session" (the contract's special case).
 *
 * What the store receives is what express-session would give it: the session's own data and a
 * `cookie` whose `expires` (a Date) and `originalMaxAge` carry the lifetime — connect-redis,
 * connect-pg-simple and connect-mongo all derive their expiry from `cookie.expires`.
 *
 * What we cannot add to someone else's store, said in the README:
 * - Tombstones live in this process only: a logout refuses later saves of that id by this worker,
 *   but a slower request in another process can still save the destroyed session back.
 * - Without `touch`, sliding re-saves the session (like @fastify/session's `rolling`).
 * - The store decides expiry; a session it returns past its `cookie.expires` is treated as gone.
 */
import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { withTimeout } from '../bounded'
import { DEFAULT_TOMBSTONE_MS, isValidSessionId, type SessionRecordStore, type StoreCheck, type StoredSession } from './types'

type Callback = (err?: unknown, value?: any) => void

/** The store API @fastify/session and express-session call. */
export interface CallbackSessionStoreApi {
  get (sid: string, callback: Callback): unknown
  set (sid: string, session: any, callback: Callback): unknown
  destroy (sid: string, callback: Callback): unknown
  touch? (sid: string, session: any, callback: Callback): unknown
}

export function isCallbackStore (value: unknown): value is CallbackSessionStoreApi {
  if (typeof value !== 'object' || value === null) return false
  const s = value as Record<string, unknown>
  return typeof s.get === 'function' && typeof s.set === 'function' && typeof s.destroy === 'function'
}

export interface CallbackSessionStoreOptions {
  /** How long a destroyed id is refused in this process (default DEFAULT_TOMBSTONE_MS). */
  tombstoneMs?: number
  /** Most tombstones kept (default 100000). */
  maxTombstones?: number
  /**
   * Bound on each call into the store (the plugin passes the store timeout). The plugin bounds each
   * operation too; this bound is what lets destroy() take back its tombstone when the store never
   * answers — otherwise this process would treat a session still in the store as logged out, and a
   * retried logout would clear the cookie without destroying anything (issue 10: never half-done).
   */
  timeoutMs?: number
}

export class CallbackSessionStore implements SessionRecordStore {
  readonly kind = 'custom' as const
  /** A description for the plugin's "store chosen" line: the store's class name. */
  readonly description: string
  private readonly tombstones: LRUCache<string, true>
  private readonly timeoutMs: number | undefined

  constructor (readonly inner: CallbackSessionStoreApi, opts: CallbackSessionStoreOptions = {}) {
    if (!isCallbackStore(inner)) throw new TypeError('CallbackSessionStore: the store needs get, set and destroy methods')
    const name = (inner as { constructor?: { name?: string } }).constructor?.name
    this.description = name !== undefined && name !== '' && name !== 'Object' ? name : 'a store object'
    this.tombstones = new LRUCache<string, true>({ max: opts.maxTombstones ?? 100_000, ttl: Math.max(1, opts.tombstoneMs ?? DEFAULT_TOMBSTONE_MS) })
    this.timeoutMs = opts.timeoutMs
  }

  /** One call into the store, bounded by timeoutMs when given. */
  private call (op: string, invoke: (cb: Callback) => unknown): Promise<any> {
    const settled = call(invoke)
    return this.timeoutMs === undefined ? settled : withTimeout(settled, this.timeoutMs, `${this.description} ${op}`)
  }

  async get (id: string): Promise<StoredSession | null> {
    if (!isValidSessionId(id) || this.tombstones.has(id)) return null
    let session: unknown
    try {
      session = await this.call('get', (cb) => this.inner.get(id, cb))
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'ENOENT') return null
      throw err
    }
    if (typeof session !== 'object' || session === null) return null
    const expiresAt = expiryOf(session)
    if (expiresAt <= Date.now()) return null
    return { json: JSON.stringify(session), expiresAt }
  }

  async set (id: string, json: string, ttlMs: number): Promise<void> {
    if (!isValidSessionId(id) || this.tombstones.has(id)) return
    const session = withLifetime(JSON.parse(json), ttlMs)
    await this.call('set', (cb) => this.inner.set(id, session, cb))
  }

  async touch (id: string, ttlMs: number): Promise<void> {
    if (!isValidSessionId(id) || this.tombstones.has(id)) return
    const stored = await this.call('get', (cb) => this.inner.get(id, cb)).catch((err) => {
      if ((err as { code?: unknown } | null)?.code === 'ENOENT') return null
      throw err
    })
    // touch never creates: a session gone (or logged out elsewhere) stays gone.
    if (typeof stored !== 'object' || stored === null || expiryOf(stored) <= Date.now()) return
    const session = withLifetime(JSON.parse(JSON.stringify(stored)), ttlMs)
    if (typeof this.inner.touch === 'function') {
      await this.call('touch', (cb) => (this.inner.touch as NonNullable<CallbackSessionStoreApi['touch']>)(id, session, cb))
    } else {
      await this.call('set', (cb) => this.inner.set(id, session, cb))
    }
  }

  async destroy (id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    this.tombstones.set(id, true)
    try {
      await this.call('destroy', (cb) => this.inner.destroy(id, cb))
    } catch (err) {
      // Not destroyed (an error, or no answer within timeoutMs): the session is still valid (the
      // plugin keeps the cookie for a retry), here too.
      this.tombstones.delete(id)
      throw err
    }
  }

  /** One `get` of an id that cannot exist: a round trip to the store's backend. Never throws. */
  async check (): Promise<StoreCheck> {
    const started = performance.now()
    try {
      await this.call('get', (cb) => this.inner.get(randomBytes(24).toString('base64url'), cb))
      return { ok: true, latencyMs: Math.round((performance.now() - started) * 100) / 100 }
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'ENOENT') return { ok: true, latencyMs: Math.round((performance.now() - started) * 100) / 100 }
      return { ok: false, error: err instanceof Error ? err.message : String(err) }
    }
  }

  /** The store is the caller's: nothing of ours to release but the tombstones. */
  async close (): Promise<void> {
    this.tombstones.clear()
  }
}

/**
 * Calls a callback-style store method; settles on the first of: its callback, the promise it
 * returns (connect-redis 8 returns one too), a synchronous throw. Later settlements are ignored.
 */
function call (invoke: (cb: Callback) => unknown): Promise<any> {
  return new Promise((resolve, reject) => {
    const cb: Callback = (err, value) => { if (err !== undefined && err !== null) reject(err); else resolve(value) }
    const returned = invoke(cb)
    if (typeof (returned as PromiseLike<unknown> | undefined)?.then === 'function') (returned as PromiseLike<unknown>).then(resolve, reject)
  })
}

/** The session's own expiry: its cookie's `expires` (a Date, or its JSON string); none = far away. */
function expiryOf (session: object): number {
  const expires = (session as { cookie?: { expires?: unknown } }).cookie?.expires
  const at = expires instanceof Date ? expires.getTime() : (typeof expires === 'string' ? Date.parse(expires) : NaN)
  return Number.isFinite(at) ? at : Number.MAX_SAFE_INTEGER
}

/**
 * The cookie fields express-session stores read for the lifetime: `expires` (a Date: when the store
 * drops the session) and `originalMaxAge`, which stays null for a browser-session cookie (the
 * adapter restores the cookie from it; the store still drops the session at `expires`).
 */
function withLifetime (session: any, ttlMs: number): any {
  const out = typeof session === 'object' && session !== null ? session : {}
  const cookie = typeof out.cookie === 'object' && out.cookie !== null ? out.cookie : {}
  out.cookie = { ...cookie, originalMaxAge: cookie.originalMaxAge === null ? null : ttlMs, expires: new Date(Date.now() + ttlMs) }
  return out
}
