/**
 * The in-memory session store, for tests and single-process development.
 *
 * Pitfall 15: @fastify/session's built-in MemoryStore keeps live object references (a handler
 * mutating a loaded session changes the "stored" one), has no TTL and no bound (research §5,
 * fastify/session#251). This store keeps JSON TEXT, like Redis and the file store, so tests see
 * production semantics; every record has a TTL, and at most `max` records are kept (least recently
 * used dropped first, with one warning the first time it happens).
 *
 * It is per process: never shared between cluster workers. The sessions plugin refuses it with more
 * than one worker (lib/sessions/select.ts) and warns under NODE_ENV=production (open-store.ts).
 */
import { LRUCache } from 'lru-cache'
import { DEFAULT_TOMBSTONE_MS, assertSessionId, type PatchOutcome, type SessionPatch, type SessionRecordStore, type StoreCheck, type StoredSession } from './types'
import { mergeWithin } from './merge'

export interface MemoryStoreLog { warn (msg: string): void }

export interface MemorySessionStoreOptions {
  /** Most sessions kept; the least recently used are dropped beyond it (default 10000). */
  max?: number
  /** How long a destroyed id is refused (default DEFAULT_TOMBSTONE_MS, 10 min). */
  tombstoneMs?: number
  /** Receives the one "store full, dropping sessions" warning. */
  log?: MemoryStoreLog
}

interface Entry { json: string, expiresAt: number }

export const DEFAULT_MEMORY_MAX = 10_000

/** express-session's wording (research §5), adapted: what users already recognise. */
export const MEMORY_PRODUCTION_WARNING =
  'the memory session store is not designed for a production environment: sessions are lost on restart and are not shared between processes; use SESSION_STORE=file or redis'

export class MemorySessionStore implements SessionRecordStore {
  readonly kind = 'memory' as const
  /** no I/O: nothing to wait for. */
  readonly boundsItself = true
  readonly max: number
  readonly tombstoneMs: number
  private readonly records: LRUCache<string, Entry>
  private readonly tombstones: LRUCache<string, true>
  private warnedFull = false

  constructor (opts: MemorySessionStoreOptions = {}) {
    this.max = opts.max ?? DEFAULT_MEMORY_MAX
    if (!Number.isInteger(this.max) || this.max < 1) throw new TypeError(`MemorySessionStore: max must be a positive integer, got ${String(opts.max)}`)
    this.tombstoneMs = opts.tombstoneMs ?? DEFAULT_TOMBSTONE_MS
    const log = opts.log
    this.records = new LRUCache<string, Entry>({
      max: this.max,
      ttlAutopurge: false,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict' && !this.warnedFull) {
          this.warnedFull = true
          log?.warn(`memory session store is full (max ${this.max}): least recently used sessions are being dropped`)
        }
      }
    })
    this.tombstones = new LRUCache<string, true>({ max: this.max, ttl: Math.max(1, this.tombstoneMs) })
  }

  async get (id: string): Promise<StoredSession | null> {
    assertSessionId(id)
    const e = this.records.get(id)
    // lru-cache's clock is performance.now(); our expiresAt is wall-clock: check both.
    if (e === undefined || e.expiresAt <= Date.now()) return null
    return { json: e.json, expiresAt: e.expiresAt }
  }

  async set (id: string, json: string, ttlMs: number): Promise<void> {
    assertSessionId(id)
    if (typeof json !== 'string') throw new TypeError('MemorySessionStore.set: json must be a string')
    // Same rule as the Redis store: a ttl <= 0 (or NaN) ends the session now.
    if (!(ttlMs > 0)) {
      this.records.delete(id)
      return
    }
    if (this.tombstones.has(id)) return
    this.records.set(id, { json, expiresAt: Date.now() + ttlMs }, { ttl: ttlMs })
  }

  /** Merges in one synchronous step: atomic in a single-threaded process. */
  async patch (id: string, changes: SessionPatch, ttlMs: number, maxBytes?: number): Promise<PatchOutcome> {
    assertSessionId(id)
    // A destroyed id has no record (destroy deletes it), so it is 'missing' like an expired one.
    const e = this.records.get(id)
    if (e === undefined || e.expiresAt <= Date.now()) return 'missing'
    if (!(ttlMs > 0)) {
      this.records.delete(id)
      return 'applied'
    }
    const json = mergeWithin(e.json, changes, maxBytes)
    if (json === null) return 'unreadable'
    this.records.set(id, { json, expiresAt: Date.now() + ttlMs }, { ttl: ttlMs })
    return 'applied'
  }

  async touch (id: string, ttlMs: number): Promise<void> {
    assertSessionId(id)
    if (!(ttlMs > 0)) return
    const e = this.records.get(id)
    if (e === undefined || e.expiresAt <= Date.now()) return
    this.records.set(id, { json: e.json, expiresAt: Date.now() + ttlMs }, { ttl: ttlMs })
  }

  async destroy (id: string): Promise<void> {
    assertSessionId(id)
    // A never-saved id needs no tombstone; writing one would let logout spam evict real ones.
    if (!this.records.has(id)) return
    this.tombstones.set(id, true)
    this.records.delete(id)
  }

  async check (): Promise<StoreCheck> {
    return { ok: true, latencyMs: 0 }
  }

  /** Sessions currently held (expired ones not yet purged included). */
  get size (): number {
    return this.records.size
  }

  async close (): Promise<void> {
    // No timers (ttlAutopurge off: expired entries go on access or eviction), nothing to release.
  }
}

export function createMemoryStore (opts?: MemorySessionStoreOptions): MemorySessionStore {
  return new MemorySessionStore(opts)
}
