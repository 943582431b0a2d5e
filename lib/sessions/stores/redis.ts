/**
 * The Redis session store (ioredis; single node, TLS `rediss://` + CA, Sentinel, Cluster — built by
 * redis/client.ts — or a client passed in: ioredis 5/6 `Redis` / `Cluster`, node-redis client,
 * cluster or sentinel; redis/client.ts is the one seam that tells them apart).
 *
 * Layout in Redis: one string key per session, `<client keyPrefix><prefix><id>`, value = the
 * session JSON text, expiry = the key's TTL (PX, milliseconds). A destroyed id holds TOMBSTONE for
 * `tombstoneMs`, and `set` refuses to overwrite it (Lua, single key: Cluster-safe). `patch`
 * splices a request's changed members into the stored JSON in one script call (redis/patch.ts);
 * the value stays a plain JSON object that connect-redis reads.
 *
 * Failure policy (DESIGN "a store failure answers 503 with Retry-After, never a hang"):
 * every operation is bounded by `timeoutMs` with our own timer whatever the client's settings
 * (research §3.3, pitfall 1), fails with StoreUnavailableError (statusCode 503), and a circuit
 * breaker makes the following operations fail in ~0 ms until Redis is back (pitfall 2).
 *
 * Caveat: a timed-out operation cannot be cancelled. A write sent to a frozen server, or sitting in
 * the offline queue of a user client (`maxRetriesPerRequest: null`, BullMQ style), may still be
 * applied when Redis comes back although we reported it failed (measured: test (b) first version).
 * That is harmless here: a late `set` cannot resurrect a destroyed session (tombstone), writes are
 * whole-session and idempotent, and the breaker keeps at most one probe per cool-down in flight.
 */
import type { Redis, RedisOptions } from 'ioredis'
import { withTimeout } from '../bounded'
import { StoreUnavailableError } from '../errors'
import { DEFAULT_TOMBSTONE_MS, assertSessionId, isValidSessionId, type PatchOutcome, type SessionPatch, type SessionRecordStore, type StoreCheck, type StoredSession } from './types'
import { normalizeClient, type ClientHandle, type ClientOptions, type RedisAddress, type RedisClient, type StoreLog } from './redis/client'
import { Breaker } from './redis/breaker'
import { GET_WITH_TTL, SET_UNLESS_TOMBSTONE, DESTROY_EXISTING, TOMBSTONE_HEAD_BYTES, TOUCH_LIVE, isTombstone } from './redis/scripts'
import { PATCH_RECORD, patchArguments, patchOutcome } from './redis/patch'

export type { StoreLog, RedisClient, RedisAddress } from './redis/client'
export { TOMBSTONE } from './redis/scripts'

/** Where Redis is (url / client / sentinels / cluster nodes / CA): documented once, in redis/client.ts. */
export interface RedisSessionStoreOptions extends Pick<ClientOptions, 'url' | 'client' | 'sentinels' | 'sentinelName' | 'sentinelPassword' | 'clusterNodes' | 'ca'> {
  /** Keys per SCAN call of the maintenance ops ids/length/clear (default 100, like connect-redis). */
  scanCount?: number
  /** Key prefix after the client's own `keyPrefix` (default `sess:`). */
  prefix?: string
  /** Bound on every operation, ms (default 1000, knob `session-redis-timeout`). */
  timeoutMs?: number
  /** How long a destroyed id is refused (default DEFAULT_TOMBSTONE_MS). */
  tombstoneMs?: number
  /** Fail-fast period after a failure before one probe is let through (default 1000 ms). */
  breakerCooldownMs?: number
  /** Extra ioredis options for the client built from `url` (TLS `ca`, `sentinels`, `name`…). */
  redisOptions?: RedisOptions
  /** pino-style logger (`fastify.log`): outage start/end and connection errors, redacted. */
  log?: StoreLog
}

export class RedisSessionStore implements SessionRecordStore {
  readonly kind = 'redis' as const
  /** every command runs under its own withTimeout (run()). */
  readonly boundsItself = true
  readonly prefix: string
  readonly timeoutMs: number
  readonly tombstoneMs: number
  private readonly handle: ClientHandle
  private readonly breaker: Breaker
  private readonly log: StoreLog | undefined
  private readonly offReady: () => void
  private readonly scanCount: number
  private closed = false

  constructor (opts: RedisSessionStoreOptions) {
    this.prefix = opts.prefix ?? 'sess:'
    this.timeoutMs = positive(opts.timeoutMs, 1000, 'timeoutMs')
    this.tombstoneMs = positive(opts.tombstoneMs, DEFAULT_TOMBSTONE_MS, 'tombstoneMs')
    this.log = opts.log
    this.scanCount = positive(opts.scanCount, 100, 'scanCount')
    this.handle = normalizeClient({
      url: opts.url,
      client: opts.client,
      sentinels: opts.sentinels,
      sentinelName: opts.sentinelName,
      sentinelPassword: opts.sentinelPassword,
      clusterNodes: opts.clusterNodes,
      ca: opts.ca,
      timeoutMs: this.timeoutMs,
      log: opts.log,
      redisOptions: opts.redisOptions
    })
    this.breaker = new Breaker(positive(opts.breakerCooldownMs, 1000, 'breakerCooldownMs'))
    // A (re)connected client closes the circuit at once: recovery after a restart does not wait
    // for the cool-down.
    this.offReady = this.handle.onReady(() => this.recovered())
  }

  /** The ioredis client in use (ours or the one passed in). */
  get client (): RedisClient {
    return this.handle.client
  }

  /** Where the store points, password redacted (for the plugin's "store chosen" log line). */
  get description (): string {
    return this.handle.describe
  }

  /**
   * Boot step: resolve when the client is ready; reject with a StoreConnectError whose one-line
   * message names REDIS_URL without its password when it is not ready within `bootTimeoutMs`.
   * On rejection our own client stops reconnecting (the plugin fails the boot or falls back).
   */
  async connect (bootTimeoutMs = 5000): Promise<void> {
    await this.handle.connect(bootTimeoutMs)
  }

  async get (id: string): Promise<StoredSession | null> {
    assertSessionId(id)
    const key = this.prefix + id
    const reply = await this.run('redis get', () => GET_WITH_TTL.run(this.handle.commands, key, []))
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') return null
    const ms = Number(reply[1])
    // -1 = no TTL: not written by us (we always set PX); treat as never expiring.
    return { json: reply[0], expiresAt: ms < 0 ? Number.MAX_SAFE_INTEGER : Date.now() + ms }
  }

  async set (id: string, json: string, ttlMs: number): Promise<void> {
    assertSessionId(id)
    if (typeof json !== 'string') throw new TypeError('RedisSessionStore.set: json must be a string')
    const ttl = Number.isFinite(ttlMs) ? Math.ceil(ttlMs) : 0
    const key = this.prefix + id
    await this.run('redis set', () => SET_UNLESS_TOMBSTONE.run(this.handle.commands, key, [json, ttl]))
  }

  /** One script call: the patch is spliced into the stored JSON inside Redis (redis/patch.ts). */
  async patch (id: string, changes: SessionPatch, ttlMs: number, maxBytes?: number): Promise<PatchOutcome> {
    assertSessionId(id)
    const ttl = Number.isFinite(ttlMs) ? Math.ceil(ttlMs) : 0
    const key = this.prefix + id
    const reply = await this.run('redis patch', () => PATCH_RECORD.run(this.handle.commands, key, [ttl, maxBytes ?? 0, ...patchArguments(changes)]))
    return patchOutcome(reply, maxBytes ?? 0)
  }

  async touch (id: string, ttlMs: number): Promise<void> {
    assertSessionId(id)
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) return
    const key = this.prefix + id
    await this.run('redis touch', () => TOUCH_LIVE.run(this.handle.commands, key, [Math.ceil(ttlMs)]))
  }

  async destroy (id: string): Promise<void> {
    assertSessionId(id)
    const key = this.prefix + id
    // Only a stored session becomes a tombstone (see DESTROY_EXISTING): enough to stop a request that
    // loaded it from saving it back, and nothing for ids that were never saved.
    await this.run('redis destroy', () => DESTROY_EXISTING.run(this.handle.commands, key, [this.tombstoneMs]))
  }

  /**
   * Maintenance (admin, tests): the ids of the live sessions. Never used on a request path.
   * Cluster-safe and keyPrefix-aware (research L3/L4, pitfall 4): SCAN runs on every master
   * (`cluster.nodes('master')`), the MATCH pattern carries the client's keyPrefix (ioredis does not
   * add it to patterns) and results are stripped of it. Tombstones (current and legacy) are not
   * sessions: a GETRANGE of the first TOMBSTONE_HEAD_BYTES per key tells them apart (a session is a
   * JSON object, starting with '{') without reading whole sessions. Every SCAN page and every batch is one bounded operation (timeout + breaker).
   * A Cluster failover or resharding during the scan can miss or repeat keys (SCAN's guarantee is
   * per node).
   */
  async ids (): Promise<string[]> {
    const ids: string[] = []
    await this.scanEach(async (batch) => {
      const heads = await this.run('redis ids', () => Promise.all(batch.map((id) => this.handle.commands.getrange(this.prefix + id, 0, TOMBSTONE_HEAD_BYTES - 1))))
      batch.forEach((id, i) => { if (heads[i] !== '' && !isTombstone(heads[i])) ids.push(id) })
    })
    return ids
  }

  /** Maintenance: number of live sessions (see ids()). */
  async length (): Promise<number> {
    return (await this.ids()).length
  }

  /**
   * Maintenance: delete every key under the prefix (sessions and tombstones) and return how many.
   * One DEL per key through the top-level client — never a multi-key DEL, which a Cluster refuses
   * with CROSSSLOT when the keys hash to different slots (research L3) — and the client adds its
   * keyPrefix itself. Not a logout of requests in flight: one that loaded its session before may
   * write it back (there is no tombstone for a cleared key).
   */
  async clear (): Promise<number> {
    let deleted = 0
    await this.scanEach(async (batch) => {
      const counts = await this.run('redis clear', () => Promise.all(batch.map((id) => this.handle.commands.del(this.prefix + id))))
      for (const n of counts) deleted += n
    })
    return deleted
  }

  /** SCAN `<keyPrefix><prefix>*` on every master; calls `fn` with the ids (prefixes stripped) of each page. */
  private async scanEach (fn: (ids: string[]) => Promise<void>): Promise<void> {
    const full = this.handle.keyPrefix + this.prefix
    const pattern = escapeGlob(full) + '*'
    if (this.handle.needsWarmup()) await this.run('redis connect', () => this.handle.warmup())
    for (const node of await this.run('redis scan', async () => await this.handle.masters())) {
      let cursor = '0'
      do {
        const [next, keys] = await this.run('redis scan', () => node.scan(cursor, 'MATCH', pattern, 'COUNT', this.scanCount))
        cursor = next
        const ids = keys.filter((k) => k.startsWith(full)).map((k) => k.slice(full.length)).filter(isValidSessionId)
        if (ids.length > 0) await fn(ids)
      } while (cursor !== '0')
    }
  }

  /** PING round trip; bypasses the breaker (it is a probe) and never throws. */
  async check (): Promise<StoreCheck> {
    if (this.closed) return { ok: false, error: 'store closed' }
    const started = performance.now()
    try {
      await withTimeout(this.handle.warmup().then(async () => await this.handle.commands.ping()), this.timeoutMs, 'redis ping')
      const latencyMs = Math.round((performance.now() - started) * 100) / 100
      this.recovered()
      return { ok: true, latencyMs }
    } catch (err) {
      return { ok: false, error: this.describeError(err) }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.offReady()
    await this.handle.close()
  }

  /** Breaker + timeout + error mapping around one operation. */
  private async run<T> (what: string, op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError(new Error('session store closed'))
    if (!this.breaker.admit()) throw new StoreUnavailableError(new CircuitOpenError())
    const startedAt = this.breaker.time()
    let value: T
    try {
      // warmup() only matters for our own client before connect(); skip the extra promise otherwise.
      const pending = this.handle.needsWarmup() ? this.handle.warmup().then(op) : op()
      value = await withTimeout(pending, this.timeoutMs, what)
    } catch (err) {
      throw this.failed(err, startedAt)
    }
    if (this.breaker.success()) this.logRecovered()
    return value
  }

  private failed (err: unknown, startedAt: number): StoreUnavailableError {
    withoutCommandArgs(err)
    if (isServerAnswer(err, this.handle)) {
      // Redis answered (WRONGTYPE, OOM, NOPERM…): not an outage, so no fail-fast, but still a 503.
      if (this.breaker.success()) this.logRecovered()
      return err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
    }
    if (this.breaker.failure(startedAt)) {
      this.log?.warn({ err: { message: this.describeError(err) } },
        `session store: Redis unavailable (${this.handle.describe}); failing fast until it answers again`)
    }
    return err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
  }

  private recovered (): void {
    if (this.breaker.success()) this.logRecovered()
  }

  private logRecovered (): void {
    this.log?.info?.({}, `session store: Redis available again (${this.handle.describe})`)
  }

  private describeError (err: unknown): string {
    const inner = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err
    const text = inner instanceof Error ? inner.message : String(inner)
    return this.handle.sanitize(text)
  }
}

/** Factory form of `new RedisSessionStore(opts)`. */
export function createRedisSessionStore (opts: RedisSessionStoreOptions): RedisSessionStore {
  return new RedisSessionStore(opts)
}

/** The `cause` of a fail-fast rejection while the circuit is open. */
export class CircuitOpenError extends Error {
  readonly code = 'ECIRCUITOPEN'
  constructor () {
    super('Redis recently failed; failing fast until it answers again')
    this.name = 'CircuitOpenError'
  }
}

/**
 * A Redis error reply means the server is up. Except these, which mean "up but cannot serve now"
 * and deserve fail-fast: LOADING (restarting with a dataset), BUSY (script stuck), MASTERDOWN /
 * CLUSTERDOWN / TRYAGAIN (failover in progress).
 */
function isServerAnswer (err: unknown, handle: ClientHandle): boolean {
  if (!(err instanceof Error) || !handle.isReplyError(err)) return false
  return !/^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/.test(err.message)
}

/**
 * ioredis attaches the failed command to its ReplyError (`err.command = { name, args }`): for our
 * scripts the args are the session key (the id) and, for a save, the whole session JSON. The error
 * goes to the log: keep the command's name, drop its args.
 */
function withoutCommandArgs (err: unknown): void {
  const command = (err as { command?: { name?: unknown, args?: unknown } } | null)?.command
  if (typeof command === 'object' && command !== null && 'args' in command) {
    (err as { command: unknown }).command = { name: command.name }
  }
}

/** SCAN MATCH is a glob: a prefix like `app[1]:` must match itself, not a character class. */
function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

function positive (value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`RedisSessionStore: ${name} must be a positive number of ms`)
  return value
}
