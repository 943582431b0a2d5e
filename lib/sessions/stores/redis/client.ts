/**
 * The one seam that knows "which client kind" the Redis store talks to (connect-redis 8's
 * `normalizeClient` idea): a client we build — single node from REDIS_URL, Sentinel from
 * REDIS_SENTINELS, Cluster from REDIS_CLUSTER_NODES, TLS with REDIS_CA_FILE — or one the user hands
 * us: an ioredis (5 or 6) `Redis` / `Cluster` (e.g. the `@fastify/redis` instance, or a BullMQ
 * connection), or a node-redis (`redis` 5) client, cluster or sentinel (node-redis.ts).
 * Everything else in the store sees only `ClientHandle`: `commands` (the few commands it sends,
 * ioredis-shaped), `masters()` and `keyPrefix` for the maintenance ops that must fan out on a
 * Cluster, and the lifecycle (connect, ready, close).
 *
 * - Our own client gets bounded settings (research §3.3 L1/L2: ioredis defaults hang 7–160 s on a
 *   dead server, forever on a frozen one — ioredis#634, #1194).
 * - A user client is used as configured: its options are never mutated, it is never closed, and
 *   only a `ready` listener is added (removed again on close). The store's own withTimeout is what
 *   bounds operations on it.
 */
import { connect as tlsConnect } from 'node:tls'
import { Redis, Cluster, type RedisOptions } from 'ioredis'
import { redactUrl } from '../../../config/values'
import { StoreConnectError } from '../../errors'
import { isNodeRedis, NodeRedisUserClient, type NodeRedisClient } from './node-redis'

/** A client the store can use: ioredis Redis / Cluster (5 or 6), or a node-redis client, cluster or sentinel. */
export type RedisClient = Redis | Cluster | NodeRedisClient

/**
 * The commands the store sends, in ioredis's shape (an ioredis client IS one; node-redis clients
 * get a thin translation to `sendCommand`). Every key command names its key first, so a Cluster
 * routes it.
 */
export interface RedisCommands {
  evalsha (sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  eval (lua: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  getrange (key: string, start: number, end: number): Promise<string>
  del (key: string): Promise<number>
  ping (): Promise<string>
}

/** One node a maintenance SCAN runs on (ioredis's `scan` signature). */
export interface ScanNode {
  scan (cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>
}

export interface StoreLog {
  warn (obj: unknown, msg?: string): void
  info? (obj: unknown, msg?: string): void
}

export interface ClientHandle {
  readonly client: RedisClient
  /** The commands the store sends (ioredis-shaped; the client itself for ioredis). */
  readonly commands: RedisCommands
  /**
   * The client's own key prefix (ioredis `keyPrefix`; node-redis has none): added to keys by the
   * client, but not to SCAN patterns nor stripped from their results, so the maintenance ops do it.
   */
  readonly keyPrefix: string
  /**
   * The nodes a maintenance op (SCAN) must visit: every master of a Cluster — a keyless command on
   * a Cluster goes to ONE random node, so a single SCAN saw 8–10 of 29 keys (research L3,
   * ioredis#175, #1884) — or the one node (the master, behind Sentinel).
   */
  masters (): Promise<ScanNode[]>
  /** A Redis error reply (the server answered, e.g. WRONGTYPE), as opposed to a connection failure. */
  isReplyError (err: unknown): boolean
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

export interface RedisAddress { host: string, port: number }

export interface ClientOptions {
  /** Single node; with sentinels/clusterNodes only its credentials, db and rediss:// are used. */
  url?: string
  client?: RedisClient
  /** Sentinel mode (REDIS_SENTINELS): the master of `sentinelName` is asked for, then followed. */
  sentinels?: readonly RedisAddress[]
  sentinelName?: string
  sentinelPassword?: string
  /** Cluster mode (REDIS_CLUSTER_NODES): startup nodes; the rest is discovered (CLUSTER SLOTS). */
  clusterNodes?: readonly RedisAddress[]
  /** CA certificate(s), PEM (REDIS_CA_FILE's content): implies TLS. */
  ca?: string | Buffer
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
  const sentinels = opts.sentinels !== undefined && opts.sentinels.length > 0 ? opts.sentinels : undefined
  const clusterNodes = opts.clusterNodes !== undefined && opts.clusterNodes.length > 0 ? opts.clusterNodes : undefined
  if (opts.client !== undefined && (opts.url !== undefined || sentinels !== undefined || clusterNodes !== undefined)) {
    throw new TypeError('RedisSessionStore: pass either `client` or `url`/`sentinels`/`clusterNodes`, not both')
  }
  if (opts.client !== undefined) {
    if (isNodeRedis(opts.client)) return new NodeRedisUserClient(opts.client)
    if (!isIoredis(opts.client)) throw new TypeError('RedisSessionStore: `client` is not a Redis client; accepted: an ioredis Redis or Cluster, or a node-redis client, cluster or sentinel')
    return new UserClient(opts.client)
  }
  if (sentinels !== undefined && clusterNodes !== undefined) {
    throw new TypeError('RedisSessionStore: `sentinels` (REDIS_SENTINELS) and `clusterNodes` (REDIS_CLUSTER_NODES) exclude each other')
  }
  if (opts.url !== undefined && !/^rediss?:\/\//i.test(opts.url)) {
    throw new TypeError(`RedisSessionStore: REDIS_URL must start with redis:// or rediss:// (TLS), got ${redactUrl(opts.url)}`)
  }
  if (sentinels === undefined && clusterNodes === undefined && (typeof opts.url !== 'string' || opts.url === '')) {
    throw new TypeError('RedisSessionStore: `url` (REDIS_URL), `sentinels`, `clusterNodes` or `client` is required')
  }
  const auth = urlAuth(opts.url)
  // TLS when the URL says rediss:// or a CA is given (a CA has no other use). `tls: { ca }` replaces
  // the system CAs for this connection only (Node tls.connect); `{}` = TLS with the system CAs.
  const tls = auth.tls || opts.ca !== undefined ? (opts.ca !== undefined ? { ca: opts.ca } : {}) : undefined
  const secrets = [...auth.secrets, ...(opts.sentinelPassword !== undefined && opts.sentinelPassword !== '' ? [opts.sentinelPassword] : [])]
  const base = ownClientOptions(opts.timeoutMs)
  const list = (a: readonly RedisAddress[]): string => a.map((x) => `${x.host}:${x.port}`).join(',')

  if (sentinels !== undefined) {
    const name = opts.sentinelName ?? 'mymaster'
    // ioredis Sentinel mode (README "Sentinel", research §3.4): asks the sentinels for the master of
    // `name`, checks its ROLE, and reconnects to the new master after a failover.
    const client = new Redis({
      ...base,
      sentinels: sentinels.map((a) => ({ host: a.host, port: a.port })),
      name,
      ...(opts.sentinelPassword !== undefined ? { sentinelPassword: opts.sentinelPassword } : {}),
      ...auth.options,
      // TLS on (rediss:// or REDIS_CA_FILE): the master/replicas AND the sentinels, which Redis
      // configures with the same TLS settings as its data nodes. (A plain-text sentinel in front
      // of TLS data nodes: pass `redisOptions: { sentinelTLS: undefined }` in code.)
      ...(tls !== undefined ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      // A sentinel that does not answer must not hold the lookup longer than one operation.
      sentinelCommandTimeout: opts.timeoutMs,
      // Subscribe to +switch-master on the sentinels: drop the old master at once instead of
      // waiting for it to close our connection or answer READONLY (ioredis 5.x `failoverDetector`).
      failoverDetector: true,
      // A demoted master answers writes with READONLY until it disconnects us: reconnect (and so
      // re-ask the sentinels) instead of failing every write until then (pitfall 7). `1` = reconnect
      // without resending: the failed op is already reported (503) and the client may retry.
      reconnectOnError: (err: Error) => /^READONLY\b/.test(err.message) ? 1 : false,
      ...opts.redisOptions,
      lazyConnect: true
    })
    return new OwnClient(client, `Sentinel master ${name} via ${list(sentinels)} (REDIS_SENTINELS)`, secrets, opts.log, tlsDiagnosis(sentinels[0], tls))
  }

  if (clusterNodes !== undefined) {
    const { lazyConnect: _l, enableOfflineQueue: _q, retryStrategy: _r, ...nodeOptions } = base
    // ioredis Cluster: `ready` only after CLUSTER SLOTS was loaded, so connect() at boot proves the
    // slot map is there. Per-node connections get the same bounded settings (commandTimeout,
    // maxRetriesPerRequest: 1); the cluster-level offline queue is off like ours (fail fast while
    // the cluster is not ready); node retryStrategy stays ioredis's null (a lost node is re-found
    // via MOVED / slot refresh).
    const client = new Cluster(clusterNodes.map((a) => ({ host: a.host, port: a.port })), {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      slotsRefreshTimeout: Math.max(1000, opts.timeoutMs),
      clusterRetryStrategy: base.retryStrategy,
      // No `db`: a Cluster only has database 0 (SELECT is refused).
      redisOptions: { ...nodeOptions, ...withoutDb(auth.options), ...(tls !== undefined ? { tls } : {}), ...opts.redisOptions }
    })
    return new OwnClient(client, `Cluster ${list(clusterNodes)} (REDIS_CLUSTER_NODES)`, secrets, opts.log, tlsDiagnosis(clusterNodes[0], tls))
  }

  const url = opts.url as string
  // Our bounded settings first, the TLS CA and user's extras over them, lazyConnect last: connect()
  // is the plugin's explicit boot step. (ioredis: an options object's `tls` wins over rediss://'s
  // default `tls: true`.)
  const client = new Redis(url, { ...base, ...(tls !== undefined ? { tls } : {}), ...opts.redisOptions, lazyConnect: true })
  return new OwnClient(client, `${redactUrl(url)} (REDIS_URL)`, secrets, opts.log)
}

/** An ioredis client (5 or 6: by shape, not instanceof, so a copy of another version is one too). */
export function isIoredis (client: unknown): client is Redis | Cluster {
  return typeof client === 'object' && client !== null && typeof (client as { status?: unknown }).status === 'string' &&
    typeof (client as { evalsha?: unknown }).evalsha === 'function'
}

function isIoredisCluster (client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true
}

/** ioredis's error replies are ReplyError (redis-errors), in 5 and 6. */
export function isIoredisReplyError (err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

/** The ioredis side: our own clients and a user's ioredis client. */
abstract class BaseHandle implements ClientHandle {
  abstract readonly owned: boolean
  abstract readonly describe: string
  readonly commands: RedisCommands
  readonly keyPrefix: string
  private readonly unsubscribers = new Set<() => void>()
  /** When the client's own errors may hide a TLS failure: a handshake of our own, its error if any. */
  protected diagnoseTls?: () => Promise<Error | undefined>

  constructor (readonly client: Redis | Cluster) {
    this.commands = client as unknown as RedisCommands
    // ioredis adds keyPrefix to key arguments but NOT to SCAN/KEYS patterns nor strips it from
    // their results (research L4, ioredis#1526, #239).
    const o = client.options as { keyPrefix?: string, redisOptions?: { keyPrefix?: string } }
    this.keyPrefix = o.keyPrefix ?? o.redisOptions?.keyPrefix ?? ''
  }

  async masters (): Promise<ScanNode[]> {
    const client = this.client
    return (isIoredisCluster(client) ? client.nodes('master') : [client]) as unknown as ScanNode[]
  }

  isReplyError (err: unknown): boolean {
    return isIoredisReplyError(err)
  }

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
      let settled = false
      const fail = (certificate = false): void => {
        settled = true
        done()
        onTimeout()
        const reason = lastError === undefined ? 'no answer' : this.sanitize(lastError.message)
        reject(new StoreConnectError(certificate
          ? `Session store: Redis at ${this.describe}: TLS certificate not trusted (${reason}); accepted: a certificate signed by a CA in REDIS_CA_FILE or the system CAs`
          : `Session store: Redis at ${this.describe} not ready within ${ms} ms (${reason})`, lastError))
      }
      let diagnosed = false
      const onError = (err: Error): void => {
        lastError = err
        // A server certificate we do not trust will not become trusted by retrying: fail the boot
        // now with the certificate error instead of after the whole boot timeout.
        if (isCertificateError(err)) { fail(true); return }
        // An error that may hide the TLS failure (a Cluster only says "Failed to refresh slots
        // cache."): look once for ourselves.
        if (this.diagnoseTls === undefined || diagnosed) return
        diagnosed = true
        void this.diagnoseTls().then((tlsError) => {
          if (tlsError === undefined || !isCertificateError(tlsError) || settled) return
          lastError = tlsError
          fail(true)
        })
      }
      const done = (): void => {
        clearTimeout(timer)
        this.client.removeListener('ready', onReady)
        this.client.removeListener('error', onError)
      }
      const onReady = (): void => { settled = true; done(); resolve() }
      const timer = setTimeout(() => fail(), ms)
      this.client.on('ready', onReady)
      this.client.on('error', onError)
      start()
    })
  }

  abstract connect (ms: number): Promise<void>
  abstract close (): Promise<void>
}

/** How long an ended client waits before it is started again (the retryStrategy's cap). */
const REVIVE_AFTER_MS = 1000

class OwnClient extends BaseHandle {
  readonly owned = true
  private closed = false
  // Before the first `ready`, errors are reported once by connect()'s rejection (boot), not here.
  private erroredSinceReady = true
  /** Set once the client was ready: from then on an 'end' we did not ask for is undone (see revive). */
  private keepAlive = false
  private reviveTimer: NodeJS.Timeout | undefined
  /** One warning per outage, not one per revival attempt. */
  private revivedSinceReady = false

  constructor (client: Redis | Cluster, readonly describe: string, private readonly secrets: string[], private readonly log: StoreLog | undefined, diagnoseTls?: () => Promise<Error | undefined>) {
    super(client)
    this.diagnoseTls = diagnoseTls
    // Without an 'error' listener ioredis prints "[ioredis] Unhandled error event" on every
    // reconnect attempt. Log once per outage, redacted; the store's breaker logs the impact.
    this.client.on('error', (err: Error) => {
      if (this.erroredSinceReady || this.closed) return
      this.erroredSinceReady = true
      this.log?.warn({ err: { message: this.sanitize(err.message), code: (err as { code?: string }).code } },
        `session store: Redis connection error (${this.describe})`)
    })
    this.client.on('ready', () => {
      this.erroredSinceReady = false
      this.revivedSinceReady = false
      this.keepAlive = true
    })
    this.client.on('end', () => { this.revive() })
  }

  /**
   * ioredis ends a client for good when its connector's connect() throws, and its Sentinel
   * connector does when a failover is announced (+switch-master, `failoverDetector`) while it is
   * asking a sentinel for the master during a reconnect: the announcement disconnects the connector,
   * the lookup then fails with "Connection is closed", and the client's status becomes `end` — it
   * never reconnects, and every session operation of that worker fails (503) until a restart. Seen
   * in CI: one app 503 for 30 s after the failover while another client of the same test recovered.
   * So once the client has been ready, an `end` we did not cause (close(), or the boot's give-up)
   * starts it again after REVIVE_AFTER_MS, and again after each further `end`.
   */
  private revive (): void {
    if (this.closed || !this.keepAlive || this.reviveTimer !== undefined) return
    if (!this.revivedSinceReady) {
      this.revivedSinceReady = true
      this.log?.warn({}, `session store: the Redis client stopped reconnecting by itself (${this.describe}); starting it again`)
    }
    this.reviveTimer = setTimeout(() => {
      this.reviveTimer = undefined
      if (this.closed || this.client.status !== 'end') return
      // A rejection ends the client again, and 'end' brings us back here.
      this.client.connect().catch(() => {})
    }, REVIVE_AFTER_MS)
    this.reviveTimer.unref()
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
      this.keepAlive = false
      this.client.disconnect()
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.reviveTimer)
    this.removeListeners()
    const client = this.client
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

  constructor (client: Redis | Cluster) {
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

function describeUserClient (client: Redis | Cluster): string {
  if (isIoredisCluster(client)) return 'the Redis Cluster client passed in `client`'
  const o = (client as Redis).options
  const where = o.path !== undefined && o.path !== null ? o.path : `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`
  return `${where} (the client passed in \`client\`)`
}

/**
 * What a URL contributes besides host:port — for Sentinel/Cluster the URL is where credentials, db
 * and the rediss:// scheme live, its host is not used — and its password as written and decoded
 * (either form could surface in a message).
 */
function urlAuth (url: string | undefined): { options: RedisOptions, tls: boolean, secrets: string[] } {
  if (url === undefined || url === '') return { options: {}, tls: false, secrets: [] }
  try {
    const u = new URL(url)
    const options: RedisOptions = {}
    if (u.username !== '') options.username = decodeURIComponent(u.username)
    if (u.password !== '') options.password = decodeURIComponent(u.password)
    const db = u.pathname.replace(/^\//, '')
    if (/^\d+$/.test(db)) options.db = Number(db)
    const raw = u.password
    const secrets = raw === '' ? [] : (decodeURIComponent(raw) === raw ? [raw] : [raw, decodeURIComponent(raw)])
    return { options, tls: u.protocol === 'rediss:', secrets }
  } catch {
    return { options: {}, tls: /^rediss:/i.test(url), secrets: [] }
  }
}

function withoutDb (o: RedisOptions): RedisOptions {
  const { db: _db, ...rest } = o
  return rest
}

/**
 * For Sentinel and Cluster clients with TLS on: ioredis reports a TLS failure of a sentinel
 * connection only as "Connection is closed", and one of the Cluster's slot-loading connection not
 * at all ("Failed to refresh slots cache."), so an untrusted certificate would wait out the boot
 * timeout and be reported as "not ready". A handshake of our own with the first address finds the
 * real cause (BaseHandle.waitReady runs it once, on the first such error).
 */
function tlsDiagnosis (address: RedisAddress, tls: { ca?: Buffer | string } | undefined): (() => Promise<Error | undefined>) | undefined {
  return tls === undefined ? undefined : async () => await tlsHandshakeError(address, tls)
}

/** One TLS handshake with `address` (as the client would do it): the error, or undefined when it succeeds. */
function tlsHandshakeError (address: RedisAddress, options: { ca?: Buffer | string }, timeoutMs = 1000): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: address.host, port: address.port, ...options })
    const finish = (err: Error | undefined): void => { clearTimeout(timer); socket.destroy(); resolve(err) }
    const timer = setTimeout(() => finish(undefined), timeoutMs)
    socket.once('secureConnect', () => finish(undefined))
    socket.once('error', (err) => finish(err))
  })
}

/** Node's TLS verification failures (CERT_HAS_EXPIRED, SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID…). */
function isCertificateError (err: Error): boolean {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && /CERT|SELF_SIGNED|ERR_TLS_|UNABLE_TO_(GET|VERIFY)/.test(code)
}
