/**
 * The one seam that knows "which client kind" the Redis store talks to (connect-redis 8's
 * `normalizeClient` idea): a client we build from REDIS_URL, or an ioredis `Redis` / `Cluster`
 * the user hands us (e.g. the `@fastify/redis` instance, or a BullMQ connection). Everything else in
 * the store sees only `ClientHandle`.
 *
 * - Our own client gets bounded settings (research §3.3 L1/L2: ioredis defaults hang 7–160 s on a
 *   dead server, forever on a frozen one — ioredis#634, #1194).
 * - A user client is used as configured: its options are never mutated, it is never closed, and
 *   only a `ready` listener is added (removed again on close). The store's own withTimeout is what
 *   bounds operations on it.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis'
import { redactUrl } from '../../../config/values'
import { StoreConnectError } from '../../errors'

export type RedisClient = Redis | Cluster

export interface StoreLog {
  warn (obj: unknown, msg?: string): void
  info? (obj: unknown, msg?: string): void
}

export interface ClientHandle {
  readonly client: RedisClient
  /** true when we built the client (we connect and close it). */
  readonly owned: boolean
  /** Safe description for messages: the URL without password, or host:port. */
  readonly describe: string
  isReady (): boolean
  /** Subscribe to the client's `ready` (reconnected) event; returns the unsubscribe function. */
  onReady (fn: () => void): () => void
  /** Our own lazy client that was never connected: start it (no-op otherwise). */
  warmup (): Promise<void>
  needsWarmup (): boolean
  /** Resolve when ready; reject with a one-line StoreConnectError after `ms`. */
  connect (ms: number): Promise<void>
  close (): Promise<void>
  /** Replace anything secret (the password) in a message from the client. */
  sanitize (text: string): string
}

export interface ClientOptions {
  url?: string
  client?: RedisClient
  timeoutMs: number
  log?: StoreLog
  /** Extra ioredis options for the client we build (TLS `ca`, `sentinels`, …). */
  redisOptions?: RedisOptions
}

/**
 * Settings for the client we build. Why each:
 * - `enableOfflineQueue: false` + `lazyConnect` + `connect()` awaited at boot: while Redis is down a
 *   command fails in ~1 ms instead of queueing (L1: 0–2 ms); awaiting ready at boot avoids the
 *   "first request fails" trap the research hit with this setting.
 * - `maxRetriesPerRequest: 1`: a command in flight when the connection drops is not re-sent 20 times.
 * - `commandTimeout`: the client abandons a command on a frozen server itself (L2: defaults wait
 *   forever with zero `error` events); our withTimeout is still the outer bound.
 * - `retryStrategy`: reconnect forever, capped at ~1 s, so recovery after a restart is quick but a
 *   dead host is not hammered.
 * - `connectTimeout`: bounded, with room for a TLS handshake over a real network.
 * - `keepAlive`: TCP keep-alive so a silently dead peer is eventually noticed (ioredis 6 default).
 */
export function ownClientOptions (timeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(2000, timeoutMs),
    keepAlive: 30_000,
    retryStrategy: (times: number) => Math.min(100 * times, 1000) + Math.floor(Math.random() * 100)
  }
}

export function normalizeClient (opts: ClientOptions): ClientHandle {
  if (opts.client !== undefined && opts.url !== undefined) {
    throw new TypeError('RedisSessionStore: pass either `url` or `client`, not both')
  }
  if (opts.client !== undefined) return new UserClient(opts.client)
  if (typeof opts.url !== 'string' || opts.url === '') {
    throw new TypeError('RedisSessionStore: `url` (REDIS_URL) or `client` is required')
  }
  if (!/^rediss?:\/\//i.test(opts.url)) {
    throw new TypeError(`RedisSessionStore: REDIS_URL must start with redis:// or rediss:// (TLS), got ${redactUrl(opts.url)}`)
  }
  return new OwnClient(opts.url, opts.timeoutMs, opts.log, opts.redisOptions)
}

abstract class BaseHandle implements ClientHandle {
  abstract readonly owned: boolean
  abstract readonly describe: string
  private readonly unsubscribers = new Set<() => void>()

  constructor (readonly client: RedisClient) {}

  isReady (): boolean {
    return this.client.status === 'ready'
  }

  onReady (fn: () => void): () => void {
    this.client.on('ready', fn)
    const off = (): void => {
      this.client.removeListener('ready', fn)
      this.unsubscribers.delete(off)
    }
    this.unsubscribers.add(off)
    return off
  }

  async warmup (): Promise<void> {}

  needsWarmup (): boolean {
    return false
  }

  sanitize (text: string): string {
    return text
  }

  protected removeListeners (): void {
    for (const off of [...this.unsubscribers]) off()
  }

  /** Wait for `ready`, remembering the last client error for the message. */
  protected waitReady (ms: number, start: () => void, onTimeout: () => void): Promise<void> {
    if (this.isReady()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      let lastError: Error | undefined
      const onError = (err: Error): void => { lastError = err }
      const done = (): void => {
        clearTimeout(timer)
        this.client.removeListener('ready', onReady)
        this.client.removeListener('error', onError)
      }
      const onReady = (): void => { done(); resolve() }
      const timer = setTimeout(() => {
        done()
        onTimeout()
        const reason = lastError === undefined ? 'no answer' : this.sanitize(lastError.message)
        reject(new StoreConnectError(
          `Session store: Redis at ${this.describe} not ready within ${ms} ms (${reason})`, lastError))
      }, ms)
      this.client.on('ready', onReady)
      this.client.on('error', onError)
      start()
    })
  }

  abstract connect (ms: number): Promise<void>
  abstract close (): Promise<void>
}

class OwnClient extends BaseHandle {
  readonly owned = true
  readonly describe: string
  private readonly secrets: string[]
  private closed = false
  // Before the first `ready`, errors are reported once by connect()'s rejection (boot), not here.
  private erroredSinceReady = true

  constructor (url: string, timeoutMs: number, private readonly log: StoreLog | undefined, extra?: RedisOptions) {
    // Our bounded settings first, the user's extras (TLS ca, sentinels…) over them, lazyConnect last:
    // connect() is the plugin's explicit boot step.
    super(new Redis(url, { ...ownClientOptions(timeoutMs), ...extra, lazyConnect: true }))
    this.describe = `${redactUrl(url)} (REDIS_URL)`
    this.secrets = secretsOf(url)
    // Without an 'error' listener ioredis prints "[ioredis] Unhandled error event" on every
    // reconnect attempt. Log once per outage, redacted; the store's breaker logs the impact.
    this.client.on('error', (err: Error) => {
      if (this.erroredSinceReady || this.closed) return
      this.erroredSinceReady = true
      this.log?.warn({ err: { message: this.sanitize(err.message), code: (err as { code?: string }).code } },
        `session store: Redis connection error (${this.describe})`)
    })
    this.client.on('ready', () => { this.erroredSinceReady = false })
  }

  sanitize (text: string): string {
    let out = redactUrl(text)
    for (const secret of this.secrets) out = out.split(secret).join('***')
    return out
  }

  needsWarmup (): boolean {
    return this.client.status === 'wait'
  }

  async warmup (): Promise<void> {
    if (this.client.status === 'wait') await this.client.connect()
  }

  connect (ms: number): Promise<void> {
    return this.waitReady(ms, () => {
      const status = this.client.status
      // connect() rejects on the first refused attempt while the client keeps retrying by itself
      // (retryStrategy); we wait for `ready` until the boot timeout instead, so a Redis that comes
      // up a moment after us is still accepted.
      if (status === 'wait' || status === 'end') this.client.connect().catch(() => {})
    }, () => {
      // Unreachable at boot: stop the reconnect loop; the plugin fails the boot or falls back.
      this.client.disconnect()
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.removeListeners()
    const client = this.client as Redis
    if (client.status === 'ready') {
      // QUIT lets in-flight replies arrive; a frozen server would never answer it, so bound it.
      const quit = client.quit().catch(() => {})
      await Promise.race([quit, new Promise((resolve) => setTimeout(resolve, 200).unref())])
    }
    client.disconnect()
  }
}

class UserClient extends BaseHandle {
  readonly owned = false
  readonly describe: string

  constructor (client: RedisClient) {
    super(client)
    this.describe = describeUserClient(client)
  }

  connect (ms: number): Promise<void> {
    return this.waitReady(ms, () => {
      // A lazy user client would connect on its first command anyway; start it now so boot can
      // tell whether it works. Nothing else about the user's client is touched.
      if (this.client.status === 'wait') this.client.connect().catch(() => {})
    }, () => {})
  }

  async close (): Promise<void> {
    // Never close a client the user owns (it may be shared with BullMQ, @fastify/redis…).
    this.removeListeners()
  }
}

function describeUserClient (client: RedisClient): string {
  if (client instanceof Cluster) return 'the Redis Cluster client passed in `client`'
  const o = (client as Redis).options
  const where = o.path !== undefined && o.path !== null ? o.path : `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`
  return `${where} (the client passed in \`client\`)`
}

/** The password as written in the URL and decoded: either form could surface in a message. */
function secretsOf (url: string): string[] {
  try {
    const raw = new URL(url).password
    if (raw === '') return []
    const decoded = decodeURIComponent(raw)
    return decoded === raw ? [raw] : [raw, decoded]
  } catch {
    return []
  }
}
