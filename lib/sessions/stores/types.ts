/**
 * The contract every session store implements (Redis, file, memory). Promise-based and
 * data-oriented; lib/sessions/adapter.ts turns it into the callback API @fastify/session calls.
 *
 * Shared rules (checked by the contract suite in test/stores-contract.test.ts):
 * - Data is a JSON string end to end: every store serializes the same way, so tests on the memory
 *   store see production semantics (no aliasing of live objects).
 * - The store is the authority on expiry: `get` returns `expiresAt` (ms since epoch), never an
 *   expired record.
 * - `destroy` leaves a tombstone for `tombstoneMs`, and `set` on a tombstoned id is a silent no-op,
 *   so a slower request that loaded the session before logout cannot bring it back.
 * - `touch` extends the lifetime of an existing record and never creates one.
 * - Ids are validated (isValidSessionId) before any I/O; an invalid id is refused loudly: every
 *   operation rejects with RefusedSessionIdError and nothing is read or written (a silent no-op
 *   would let a custom id generator "save" sessions that never exist).
 * - A missing record is `null` at once (no retries, no log line).
 * - `patch` (optional: a store without it gets whole-record writes) applies one request's changes
 *   to the stored record atomically — the top-level members it set or removed, every other member
 *   left as stored — so concurrent requests changing different members all land. It never creates
 *   a record: a missing, expired or destroyed id answers 'missing' and nothing is written.
 */
export interface StoredSession {
  /** The serialized session (JSON text). */
  json: string
  /** When the record expires, ms since epoch. */
  expiresAt: number
}

/**
 * One request's changes to a session: the unit is the top-level member (a nested object is
 * replaced whole). Member names are the session's own keys; values are JSON text.
 */
export interface SessionPatch {
  readonly set: ReadonlyArray<readonly [name: string, json: string]>
  readonly unset: readonly string[]
  /**
   * The record text the request loaded, and the whole record with its changes. A store that still
   * holds exactly `base` (no other write meanwhile: the usual case) may store `whole` as is — what
   * merging would give — without parsing the stored record (stores/merge.ts).
   */
  readonly base?: string
  readonly whole?: string
}

/**
 * 'applied': written (or, with a ttl <= 0, the record removed). 'missing': no live record (never
 * saved, expired, destroyed), nothing written. 'unreadable': the stored value is not a JSON object,
 * nothing written (the caller may replace it whole).
 */
export type PatchOutcome = 'applied' | 'missing' | 'unreadable'

export interface StoreCheck { ok: boolean, latencyMs?: number, error?: string }

export interface SessionRecordStore {
  /** `custom`: a @fastify/session / express-session store passed in code (stores/callback.ts). */
  readonly kind: 'redis' | 'file' | 'memory' | 'custom'
  /**
   * True when every operation already settles within the store's timeout by itself (the Redis
   * store bounds each command with its own timer; the memory store does no I/O). The adapter then
   * skips its outer bound, one timer per operation less on the hot path. Unset = bounded outside.
   */
  readonly boundsItself?: boolean
  get (id: string): Promise<StoredSession | null>
  set (id: string, json: string, ttlMs: number): Promise<void>
  /**
   * Applies `changes` to the live record atomically and gives it `ttlMs` to live (see above). A
   * merged record over `maxBytes` (UTF-8) is not written: SessionTooLargeError (size-limit.ts).
   */
  patch? (id: string, changes: SessionPatch, ttlMs: number, maxBytes?: number): Promise<PatchOutcome>
  touch (id: string, ttlMs: number): Promise<void>
  destroy (id: string): Promise<void>
  /** Round trip to the backend (readiness); never throws. */
  check (): Promise<StoreCheck>
  /** Release timers/connections the store owns (not a client the user passed in). */
  close (): Promise<void>
}

/** How long a destroyed id stays refused. Long enough to outlive any request still in flight. */
export const DEFAULT_TOMBSTONE_MS = 10 * 60 * 1000

/** Longest id the stores accept: room for any generator (a UUID is 36), short enough for a file name. */
export const MAX_SESSION_ID_LENGTH = 128

/** The id alphabet as a regex fragment (file/paths.ts builds its file-name patterns from it). */
export const SESSION_ID_CHARS = `[A-Za-z0-9_-]{1,${MAX_SESSION_ID_LENGTH}}`

/**
 * @fastify/session's default ids are 32 base64url characters; a custom generator may use any
 * length from 1 to MAX_SESSION_ID_LENGTH in the same alphabet. Anything else (`../x`, absolute
 * paths, NUL, dots, over-long) never reaches a path or a key.
 */
const SESSION_ID = new RegExp(`^${SESSION_ID_CHARS}$`)

export function isValidSessionId (id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID.test(id)
}

/** Rejects with RefusedSessionIdError unless `id` is valid; the stores call it first thing. */
export function assertSessionId (id: unknown): asserts id is string {
  if (!isValidSessionId(id)) throw new RefusedSessionIdError(id)
}

/**
 * A store was handed an id it will not store. The message says what is accepted and never echoes
 * the id (a session id is a bearer credential); 500, because it is the id generator's fault.
 */
export class RefusedSessionIdError extends Error {
  readonly statusCode = 500
  readonly code = 'FST_SESSION_ID_REFUSED'

  constructor (id: unknown) {
    const got = typeof id !== 'string'
      ? (id === null ? 'null' : `a ${typeof id}`)
      : id.length === 0 || id.length > MAX_SESSION_ID_LENGTH ? `${id.length} characters` : 'a character outside that alphabet'
    super(`session id refused: accepted ids are 1 to ${MAX_SESSION_ID_LENGTH} characters of A-Z a-z 0-9 _ -; got ${got}`)
    this.name = 'RefusedSessionIdError'
  }
}
