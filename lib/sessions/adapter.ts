/**
 * SessionRecordStore (promises, JSON text, store-owned expiry) → the callback store
 * @fastify/session calls (`get`, `set`, `destroy`; it never calls `touch` — research 2.1).
 *
 * - Every operation is bounded (withTimeout) whatever the store does inside: "a session read or
 *   write never waits longer than its timeout" (pitfall 1). The Redis store bounds itself too; our
 *   outer bound has a little slack so its better-classified error wins.
 * - Every failure becomes StoreUnavailableError (503 + Retry-After, generic message) instead of
 *   @fastify/session's 500 (research 2.1); the original error goes to the log, never to the client.
 * - On load, `cookie.expires` is replaced by the store's `expiresAt`: @fastify/session decides
 *   expiry from the STORED cookie (index.js decryptSession: `originalExpires || expires`), while
 *   our sliding refresh (touch.ts) only moves the store's TTL. Without this a session kept alive by
 *   touches would be regenerated as "expired" one ttl after its last write.
 * - `secure` / `sameSite` / `httpOnly` are not restored from the stored cookie: the stored copy
 *   holds the value resolved for the request that saved it (`secure: 'auto'` became false on an
 *   http request), and @fastify/session lets stored cookie fields override the plugin's options.
 *   The current configuration must apply on every request.
 */
import type { FastifyBaseLogger } from 'fastify'
import { withTimeout } from './bounded'
import { StoreUnavailableError } from './errors'
import { isValidSessionId, type SessionRecordStore } from './stores/types'

type Callback = (err?: unknown) => void
type GetCallback = (err: unknown, session?: any) => void

export interface CallbackStore {
  get (id: string, cb: GetCallback): void
  set (id: string, session: any, cb: Callback): void
  destroy (id: string, cb: Callback): void
}

export interface AdapterOptions {
  /** Default lifetime when a session carries no maxAge of its own. */
  ttlMs: number
  /** Bound on one operation. */
  timeoutMs: number
  log: FastifyBaseLogger
}

/** Slack added to our outer bound so a store's own (better-classified) timeout fires first. */
const SLACK_MS = 50

/** Cookie fields that always come from the current configuration, never from the stored copy. */
const CONFIG_COOKIE_FIELDS = ['secure', 'sameSite', 'httpOnly', 'expires', 'originalExpires'] as const

export function toCallbackStore (store: SessionRecordStore, opts: AdapterOptions): CallbackStore {
  const bound = opts.timeoutMs + SLACK_MS

  const fail = (what: string, err: unknown): StoreUnavailableError => {
    const cause = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err
    opts.log.warn({ err: cause, store: store.kind }, `session store ${what} failed`)
    return err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
  }

  return {
    get (id, cb) {
      if (!isValidSessionId(id)) { cb(null, null); return }
      withTimeout(store.get(id), bound, `${store.kind} get`).then((record) => {
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
        const cookie = typeof data.cookie === 'object' && data.cookie !== null ? { ...data.cookie } : {}
        for (const field of CONFIG_COOKIE_FIELDS) delete cookie[field]
        if (typeof cookie.originalMaxAge !== 'number' || !(cookie.originalMaxAge > 0)) cookie.originalMaxAge = opts.ttlMs
        cookie.expires = new Date(Math.min(record.expiresAt, 8.64e15)).toISOString()
        data.cookie = cookie
        cb(null, data)
      }, (err) => cb(fail('get', err)))
    },

    set (id, session, cb) {
      if (!isValidSessionId(id)) { cb(); return }
      let json: string
      try {
        json = JSON.stringify(session)
      } catch (err) {
        // Not a store failure: the application put something unserializable in the session.
        cb(err)
        return
      }
      const maxAge = session?.cookie?.originalMaxAge
      const ttl = typeof maxAge === 'number' && maxAge > 0 ? maxAge : opts.ttlMs
      withTimeout(store.set(id, json, ttl), bound, `${store.kind} set`).then(() => cb(), (err) => cb(fail('set', err)))
    },

    destroy (id, cb) {
      if (!isValidSessionId(id)) { cb(); return }
      withTimeout(store.destroy(id), bound, `${store.kind} destroy`).then(() => cb(), (err) => cb(fail('destroy', err)))
    }
  }
}

/** store.touch, bounded; resolves false (and logs) on failure: a missed refresh is not fatal. */
export async function touchBounded (store: SessionRecordStore, id: string, ttlMs: number, opts: AdapterOptions): Promise<boolean> {
  try {
    await withTimeout(store.touch(id, ttlMs), opts.timeoutMs + SLACK_MS, `${store.kind} touch`)
    return true
  } catch (err) {
    const cause = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err
    opts.log.warn({ err: cause, store: store.kind }, 'session store touch failed; the session was not refreshed')
    return false
  }
}
