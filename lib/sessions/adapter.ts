/**
 * SessionRecordStore (promises, JSON text, store-owned expiry) → the callback store
 * @fastify/session calls (`get`, `set`, `destroy`; it never calls `touch` — research 2.1).
 *
 * - Every operation is bounded (withTimeout) whatever the store does inside: "a session read or
 *   write never waits longer than its timeout" (pitfall 1). The Redis store bounds itself too; our
 *   outer bound has a little slack so its better-classified error wins.
 * - Every failure becomes StoreUnavailableError (503 + Retry-After, generic message) instead of
 *   @fastify/session's 500 (research 2.1); the original error goes to the log, never to the client.
 * - On load, the stored cookie's expiry is NOT restored: @fastify/session decides expiry from the
 *   restored cookie (index.js decryptSession: `originalExpires || expires`), while our sliding
 *   refresh (touch.ts) only moves the store's TTL, so a stored write-time expiry would regenerate a
 *   session kept alive by touches one ttl after its last write. The stores never return an expired
 *   record, so the cookie is restored with its lifetime only (`maxAge`: expires = now + maxAge),
 *   and the store's real expiry goes to `onLoaded` (the plugin's touch decision).
 * - Stores that bound themselves (store.boundsItself) are not wrapped in a second timer.
 * - A save of a session loaded from the store is a patch of the members the request changed
 *   (patch.ts; issue 14) when the store can patch and `loaded` is given; a new session, a store
 *   without patch() (a store object of the user's) or SESSION_WRITES=replace writes the whole record.
 * - `secure` / `sameSite` / `httpOnly` are not restored from the stored cookie: the stored copy
 *   holds the value resolved for the request that saved it (`secure: 'auto'` became false on an
 *   http request), and @fastify/session lets stored cookie fields override the plugin's options.
 *   The current configuration must apply on every request.
 */
import type { FastifyBaseLogger } from 'fastify'
import { withTimeout } from './bounded'
import { StoreUnavailableError } from './errors'
import { RefusedSessionIdError, isValidSessionId, type SessionRecordStore } from './stores/types'
import { SessionTooLargeError, sessionTooLarge, sizeSurelyOver } from './size-limit'
import { BIG_SAVE_BYTES, HeapPressure, MemoryPressureError } from './heap-pressure'
import { storeOpTimer, type StoreOp, type StoreOpTimer } from '../ops/store-ops'
import { storedCookie, type LoadedSessions, type SessionChanges } from './patch'

type Callback = (err?: unknown) => void
type GetCallback = (err: unknown, session?: any) => void

export interface CallbackStore {
  get (id: string, cb: GetCallback): void
  set (id: string, session: any, cb: Callback): void
  destroy (id: string, cb: Callback): void
}

export interface AdapterOptions {
  /** Default lifetime in the store when a session carries no maxAge of its own. */
  ttlMs: number
  /**
   * Cookie lifetime of a loaded session whose record says nothing about it (written by something
   * else): ttlMs, or null for browser-session cookies (`cookie.maxAge: null`). Default ttlMs.
   */
  cookieMaxAgeMs?: number | null
  /** Bound on one operation. */
  timeoutMs: number
  /** Largest session JSON (UTF-8 bytes) a save may write (session-max-size); larger → 413. */
  maxSessionBytes: number
  log: FastifyBaseLogger
  /**
   * Called when a load fails; the request then continues without a session (get answers "none")
   * and the caller decides what the request sees (the plugin: a session that throws the 503 when
   * used). Without it, a failed load fails the request.
   */
  onLoadFailure?: (id: string, error: StoreUnavailableError) => void
  /**
   * Called when a destroy fails (the session is still in the store): the plugin then keeps the
   * browser's cookie, so the logout is not half-done and can be retried.
   */
  onDestroyFailure?: (id: string, error: Error) => void
  /**
   * Called with the store's expiry of each session loaded, right before @fastify/session receives
   * it (so synchronously before the next onRequest hook runs).
   */
  onLoaded?: (id: string, expiresAt: number, json: string) => void
  /**
   * Sessions loaded from the store, with what they were loaded from: a save of one of these is a
   * patch of the members it changed (patch.ts) when the store can patch. Unset: whole-record writes.
   */
  loaded?: LoadedSessions
}

/** Slack added to our outer bound so a store's own (better-classified) timeout fires first. */
const SLACK_MS = 50

/**
 * The session as stored: its own data plus the cookie fields restoredCookie() reads back. A plain
 * object keeps JSON.stringify on V8's fast path (a Session instance, with a Cookie whose toJSON
 * returns Dates, is ~4x slower to stringify) and the record half as big.
 */
function serializeSession (session: any): string {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(session)) out[key] = session[key]
  const cookie = storedCookie(session.cookie)
  if (cookie !== undefined) out.cookie = cookie
  return JSON.stringify(out)
}

/**
 * The cookie to restore: only what belongs to the session (its lifetime, path, domain). Built as
 * one fresh object literal (not a copy with fields deleted: delete turns it into a slow
 * dictionary-mode object that every Cookie/Session constructor then reads).
 *
 * A stored `originalMaxAge: null` is a browser-session cookie (`cookie.maxAge: null`, a route's
 * `options({ maxAge: null })`, or @fastify/session's and express-session's default) and stays one:
 * `maxAge: null` overrides the registration's maxAge in the Session constructor. A record without
 * a lifetime gets `defaultMaxAge`.
 *
 * The lifetime goes back as `maxAge`, not `originalMaxAge`, and no `expires` is given: the Session
 * constructor turns `originalMaxAge` into `maxAge` by deleting fields of its cookie options, and an
 * `expires` adds an `originalExpires` Date to the cookie. Measured on a read-modify-write route
 * (memory store, server CPU per request): 39 µs like this, 56 µs with `originalMaxAge`, 58 µs with
 * `expires` — more than everything else our store path costs together.
 */
function restoredCookie (stored: any, defaultMaxAge: number | null): Record<string, unknown> {
  const lifetime = typeof stored === 'object' && stored !== null ? stored.originalMaxAge : undefined
  const maxAge = typeof lifetime === 'number' && lifetime > 0 ? lifetime : (lifetime === null ? null : defaultMaxAge)
  const cookie: Record<string, unknown> = { maxAge }
  if (typeof stored === 'object' && stored !== null) {
    if (typeof stored.path === 'string') cookie.path = stored.path
    if (typeof stored.domain === 'string') cookie.domain = stored.domain
    if (stored.partitioned === true) cookie.partitioned = true
  }
  return cookie
}

export function toCallbackStore (store: SessionRecordStore, opts: AdapterOptions): CallbackStore {
  const bound = opts.timeoutMs + SLACK_MS
  const cookieMaxAgeMs = opts.cookieMaxAgeMs === undefined ? opts.ttlMs : opts.cookieMaxAgeMs
  // Metrics (lib/ops): decided once here; with metrics off nothing is timed.
  const timed: StoreOpTimer = storeOpTimer(store.kind) ?? ((_op, operation) => operation)
  const heapPressure = new HeapPressure()
  const bounded = <T>(op: Promise<T>, what: StoreOp): Promise<T> =>
    timed(what, store.boundsItself === true ? op : withTimeout(op, bound, `${store.kind} ${what}`))

  const fail = (what: string, err: unknown): StoreUnavailableError => {
    const cause = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err
    opts.log.warn({ err: cause, store: store.kind }, `session store ${what} failed`)
    return err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
  }

  /**
   * A store's refusal of this one request (an oversized record it built itself, an id it does not
   * take) keeps its own status: it is not an outage, so not a 503.
   */
  const refusal = (err: unknown): Error | undefined => {
    if (!(err instanceof SessionTooLargeError) && !(err instanceof RefusedSessionIdError)) return undefined
    opts.log.warn({ store: store.kind }, `session store refused the write: ${err.message}`)
    return err
  }

  /** An id no store accepts (a custom idGenerator's): the request fails with a 500 that says why in the log. */
  const refusedId = (what: string, id: unknown): RefusedSessionIdError => {
    const error = new RefusedSessionIdError(id)
    opts.log.error({ store: store.kind }, `session ${what} refused: ${error.message}`)
    return error
  }

  const refusedSessions = new WeakSet<object>()

  // Only stores that can patch get patches; the others keep whole-record writes.
  const patching = store.patch !== undefined ? opts.loaded : undefined

  /** Fails the save with 413; logged once per session (Fastify sends the error response through the onSend hooks again, so @fastify/session tries the same save twice). */
  const refuseTooLarge = (session: any, tooLarge: SessionTooLargeError, cb: Callback): void => {
    if (!refusedSessions.has(session)) {
      refusedSessions.add(session)
      opts.log.warn({ store: store.kind, sessionBytes: tooLarge.bytes, limit: tooLarge.limit },
        `session not saved: ${tooLarge.size}, over session-max-size (${tooLarge.limit} bytes; SESSION_MAX_SIZE); the request fails with 413`)
    }
    cb(tooLarge)
  }

  /**
   * A big save while the heap is near its cap (heap-pressure.ts): refused with 503, logged once per
   * episode. A small one always goes ahead.
   */
  let warnedPressure = false
  const isBigSaveUnderPressure = (session: any): boolean => {
    const near = heapPressure.nearCap()
    if (near === null) { warnedPressure = false; return false }
    if (typeof session !== 'object' || session === null || sizeSurelyOver(session, BIG_SAVE_BYTES, 'cookie') === 0) return false
    if (!warnedPressure) {
      warnedPressure = true
      opts.log.warn({ store: store.kind, heapUsedMb: Math.round(near.usedMb), heapLimitMb: Math.round(near.limitMb) },
        `session not saved: this process's heap is at ${Math.round(near.usedShare * 100)}% of its cap (${Math.round(near.usedMb)} of ${Math.round(near.limitMb)} MB); saves of sessions of ${BIG_SAVE_BYTES / 1024} KB or more fail with 503 until it is lower`)
    }
    return true
  }

  const writeWhole = (id: string, session: any, ttl: number, cb: Callback): void => {
    let json: string
    try {
      json = serializeSession(session)
    } catch (err) {
      // Not a store failure: the application put something unserializable in the session.
      cb(err)
      return
    }
    const tooLarge = sessionTooLarge(json, opts.maxSessionBytes)
    if (tooLarge !== null) { refuseTooLarge(session, tooLarge, cb); return }
    bounded(store.set(id, json, ttl), 'set').then(() => cb(), (err) => cb(refusal(err) ?? fail('set', err)))
  }

  return {
    get (id, cb) {
      if (!isValidSessionId(id)) { cb(null, null); return }
      bounded(store.get(id), 'get').then((record) => {
        if (record === null) { cb(null, null); return }
        let data: any
        try {
          data = JSON.parse(record.json)
        } catch (err) {
          // A corrupt record is a miss, not a 500 (pitfall 11).
          opts.log.warn({ err, store: store.kind }, 'session store returned an unreadable session; treated as absent')
          cb(null, null)
          return
        }
        if (typeof data !== 'object' || data === null || Array.isArray(data)) { cb(null, null); return }
        data.cookie = restoredCookie(data.cookie, cookieMaxAgeMs)
        opts.onLoaded?.(id, record.expiresAt, record.json)
        cb(null, data)
      }, (err) => {
        const error = fail('get', err)
        if (opts.onLoadFailure === undefined) { cb(error); return }
        opts.onLoadFailure(id, error)
        cb(null, null)
      })
    },

    set (id, session, cb) {
      if (!isValidSessionId(id)) { cb(refusedId('set', id)); return }
      const maxAge = session?.cookie?.originalMaxAge
      const ttl = typeof maxAge === 'number' && maxAge > 0 ? maxAge : opts.ttlMs
      let changes: SessionChanges | undefined
      try {
        // A session that is certainly too large is refused before it is serialized at all.
        const atLeast = typeof session === 'object' && session !== null ? sizeSurelyOver(session, opts.maxSessionBytes, 'cookie') : 0
        if (atLeast > 0) { refuseTooLarge(session, new SessionTooLargeError(atLeast, opts.maxSessionBytes, false), cb); return }
        if (isBigSaveUnderPressure(session)) { cb(new MemoryPressureError()); return }
        changes = patching?.changesOf(session)
      } catch (err) {
        // Not a store failure: the application put something unserializable in the session.
        cb(err)
        return
      }
      if (changes === undefined) { writeWhole(id, session, ttl, cb); return }
      const applied = changes
      // The store merges and checks the merged record against the limit (it alone sees it).
      bounded(store.patch!(id, applied.patch, ttl, opts.maxSessionBytes), 'set').then((outcome) => {
        if (outcome !== 'unreadable') {
          if (outcome === 'missing') patching!.markGone(session)
          else patching!.saved(session, applied.members)
          cb()
          return
        }
        // Not a JSON object in the store (written by something else): replaced whole.
        opts.log.warn({ store: store.kind }, 'session store held an unreadable session; replaced it whole')
        writeWhole(id, session, ttl, cb)
      }, (err) => {
        if (err instanceof SessionTooLargeError) refuseTooLarge(session, err, cb)
        else cb(refusal(err) ?? fail('set', err))
      })
    },

    destroy (id, cb) {
      if (!isValidSessionId(id)) { cb(refusedId('destroy', id)); return }
      bounded(store.destroy(id), 'destroy').then(() => cb(), (err) => {
        const error = refusal(err) ?? fail('destroy', err)
        opts.onDestroyFailure?.(id, error)
        cb(error)
      })
    }
  }
}

/** store.touch, bounded; resolves false (and logs) on failure: a missed refresh is not fatal. */
export async function touchBounded (store: SessionRecordStore, id: string, ttlMs: number, opts: AdapterOptions): Promise<boolean> {
  try {
    const touch = withTimeout(store.touch(id, ttlMs), opts.timeoutMs + SLACK_MS, `${store.kind} touch`)
    await (storeOpTimer(store.kind)?.('touch', touch) ?? touch)
    return true
  } catch (err) {
    const cause = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err
    opts.log.warn({ err: cause, store: store.kind }, 'session store touch failed; the session was not refreshed')
    return false
  }
}
