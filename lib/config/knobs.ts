/**
 * The knob table: the one definition of every setting the launcher and the sessions plugin read.
 *
 * Env parsing, CLI flags, options in code, `--help`, `prodserver config` and the README table are
 * all derived from this list (Waitress's `adjustments.py` is the model). Adding a knob here is the
 * whole job; nothing else lists knob names.
 */
import type { Secret } from './secret-list'

export type KnobKind =
  | 'boolean'
  | 'integer'
  | 'number'
  | 'duration'
  | 'size'
  | 'string'
  | 'enum'
  | 'addresses'
  | 'octal'
  | 'secrets'
  | 'list'

export type KnobGroup = 'app' | 'process' | 'listen' | 'server' | 'session' | 'not-applicable'

export interface KnobDefinition {
  /** kebab-case name: the CLI flag is `--<name>`, the option in code is its camelCase form. */
  readonly name: string
  readonly kind: KnobKind
  readonly group: KnobGroup
  /** Environment variables, the preferred (`PRODSERVER_…`) one first, then the aliases. */
  readonly env: readonly string[]
  /** Parsed default (durations in ms, sizes in bytes); `undefined` = unset / computed. */
  readonly default?: unknown
  /** How the default reads in help and docs when it is not a plain value. */
  readonly defaultText?: string
  readonly help: string
  /** What a bare number means for a duration: seconds (Waitress, SESSION_TTL) or milliseconds. */
  readonly bareUnit?: 's' | 'ms'
  readonly values?: readonly string[]
  readonly min?: number
  readonly max?: number
  /** Name of the option in the sessions plugin (session knobs only). */
  readonly pluginOption?: string
  /** Never printed in clear (config output, logs, errors). */
  readonly secret?: boolean
  /** One-letter CLI form (`-p 3000`), for the knobs fastify-cli users type most. */
  readonly short?: string
}

const SECOND = 1000

export const KNOBS = [
  // ── the app: loaders, logs, watch (fastify-cli's flags and FASTIFY_* names) ──────────────────
  {
    name: 'import', kind: 'list', group: 'app', env: ['PRODSERVER_IMPORT', 'FASTIFY_IMPORT'], short: 'i', defaultText: '—',
    help: 'Module(s) to preload with node --import in the server process and every worker, e.g. a TypeScript loader (tsx); repeat or comma-separate.'
  },
  {
    name: 'require', kind: 'list', group: 'app', env: ['PRODSERVER_REQUIRE', 'FASTIFY_REQUIRE'], short: 'r', defaultText: '—',
    help: 'CommonJS module(s) to preload with node --require in the server process and every worker (ts-node/register, dotenv/config); repeat or comma-separate.'
  },
  {
    name: 'watch', kind: 'boolean', group: 'app', env: ['PRODSERVER_WATCH', 'FASTIFY_WATCH'], short: 'w', default: false,
    help: 'Development: on a file change under the working directory (not node_modules, .git, dot-directories, *.log), restart the server (single mode) or reload the workers one at a time (cluster mode).'
  },
  {
    name: 'log-level', kind: 'enum', group: 'app', env: ['PRODSERVER_LOG_LEVEL', 'FASTIFY_LOG_LEVEL'], short: 'l',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], defaultText: "info; the app's own logger as configured",
    help: "Level of the launcher's log and of the app's Fastify logger; an app without a logger gets one at this level (request logs at info)."
  },
  {
    name: 'pretty-logs', kind: 'boolean', group: 'app', env: ['PRODSERVER_PRETTY_LOGS', 'FASTIFY_PRETTY_LOGS'], short: 'P',
    defaultText: 'on a terminal, when pino-pretty is installed',
    help: 'Human-readable logs through pino-pretty (install it: npm i -D pino-pretty); off = JSON lines.'
  },

  // ── process model ────────────────────────────────────────────────────────────────────────────
  {
    name: 'cluster', kind: 'boolean', group: 'process', env: ['PRODSERVER_CLUSTER'], default: false,
    help: 'Multi-process mode (Gunicorn-like); also on when an explicit worker count > 1 is given.'
  },
  {
    name: 'workers', kind: 'integer', group: 'process', env: ['PRODSERVER_WORKERS', 'WORKERS', 'WEB_CONCURRENCY'],
    min: 1, max: 1024, defaultText: 'formula',
    help: 'Worker processes in cluster mode; an explicit count always wins over the formula.'
  },
  {
    name: 'threads', kind: 'integer', group: 'process', env: ['PRODSERVER_THREADS', 'THREADS', 'WAITRESS_THREADS'],
    min: 1, max: 1024, defaultText: 'unset',
    help: "Per-process libuv pool size (UV_THREADPOOL_SIZE), Node's analogue of a thread; divides the worker count."
  },
  {
    name: 'worker-memory-mb', kind: 'integer', group: 'process', env: ['PRODSERVER_WORKER_MEMORY_MB', 'WORKER_MEMORY_MB'],
    default: 200, min: 32, max: 1048576,
    help: "Memory budget of one worker in MB; sizes the worker count and caps each worker's V8 heap (cluster mode)."
  },
  {
    name: 'cpus', kind: 'number', group: 'process', env: ['PRODSERVER_CPUS'], min: 0.01, max: 4096,
    defaultText: 'detected', help: 'Override the CPU count readResources() found (cgroup quota aware).'
  },
  {
    name: 'memory-mb', kind: 'integer', group: 'process', env: ['PRODSERVER_MEMORY_MB'], min: 16, max: 1073741824,
    defaultText: 'detected', help: 'Override the memory (MB) readResources() found (cgroup limit aware).'
  },
  {
    name: 'worker-timeout', kind: 'duration', group: 'process', env: ['PRODSERVER_WORKER_TIMEOUT'],
    default: 30 * SECOND, bareUnit: 's', min: 0,
    help: 'A worker whose event loop does not answer the heartbeat this long is replaced (0 = off).'
  },
  {
    name: 'graceful-timeout', kind: 'duration', group: 'process', env: ['PRODSERVER_GRACEFUL_TIMEOUT'],
    default: 30 * SECOND, bareUnit: 's', min: 0,
    help: 'Drain budget on stop/reload before a forced kill.'
  },
  {
    name: 'max-requests', kind: 'integer', group: 'process', env: ['PRODSERVER_MAX_REQUESTS'], default: 0, min: 0,
    help: 'Recycle a worker after this many requests, one worker at a time (0 = never).'
  },
  {
    name: 'max-requests-jitter', kind: 'integer', group: 'process', env: ['PRODSERVER_MAX_REQUESTS_JITTER'],
    default: 0, min: 0, help: 'Random 0..N added to max-requests per worker so workers do not recycle together.'
  },
  {
    name: 'worker-memory-threshold', kind: 'number', group: 'process', env: ['PRODSERVER_WORKER_MEMORY_THRESHOLD'],
    default: 0.7, min: 0, max: 1,
    help: 'A worker whose RSS stays above this fraction of worker-memory-mb, or its V8 heap above this fraction of its heap cap, is replaced gracefully (replacement ready first); 0 = observe only.'
  },
  {
    name: 'worker-memory-samples', kind: 'integer', group: 'process', env: ['PRODSERVER_WORKER_MEMORY_SAMPLES'],
    default: 2, min: 1, max: 1000, help: 'Consecutive samples over worker-memory-threshold before the worker is replaced.'
  },
  {
    name: 'worker-memory-interval', kind: 'duration', group: 'process', env: ['PRODSERVER_WORKER_MEMORY_INTERVAL'],
    default: SECOND, bareUnit: 's', min: 0,
    help: "How often each worker's memory is sampled (RSS from /proc by the primary, heap from the worker's heartbeat); 0 = never."
  },
  {
    name: 'control-dir', kind: 'string', group: 'process', env: ['PRODSERVER_CONTROL_DIR'],
    defaultText: '$XDG_RUNTIME_DIR/prodserver, else <tmp>/prodserver-<uid>',
    help: 'Private directory (0700) of the control socket that prodserver status, reload and stop use; set it in both places when the server has a private /tmp.'
  },
  {
    name: 'pid-file', kind: 'string', group: 'process', env: ['PRODSERVER_PID_FILE'], defaultText: '—',
    help: "Write the server's pid (the primary's in cluster mode) here at start, remove it at exit; refused when it holds the pid of a running server."
  },

  // ── where to listen ──────────────────────────────────────────────────────────────────────────
  {
    name: 'host', kind: 'string', group: 'listen', env: ['PRODSERVER_HOST', 'FASTIFY_ADDRESS', 'HOST'], default: '0.0.0.0', short: 'a',
    help: 'Interface to listen on (exclusive with listen and unix-socket).'
  },
  {
    name: 'port', kind: 'integer', group: 'listen', env: ['PRODSERVER_PORT', 'FASTIFY_PORT', 'PORT'], default: 8080, min: 0, max: 65535, short: 'p',
    help: 'TCP port to listen on (exclusive with listen and unix-socket).'
  },
  {
    name: 'listen', kind: 'addresses', group: 'listen', env: ['PRODSERVER_LISTEN'], defaultText: '—',
    help: 'Space- or comma-separated host:port list (Waitress listen; [::1]:8080 for IPv6, *:8080 for all).'
  },
  {
    name: 'unix-socket', kind: 'string', group: 'listen', env: ['PRODSERVER_UNIX_SOCKET', 'FASTIFY_SOCKET'], defaultText: '—', short: 's',
    help: 'Listen on this unix socket path; a stale socket file is removed first.'
  },
  {
    name: 'unix-socket-perms', kind: 'octal', group: 'listen', env: ['PRODSERVER_UNIX_SOCKET_PERMS'], default: 0o600,
    defaultText: '600', help: 'Octal permissions applied to the unix socket after listen.'
  },
  {
    name: 'backlog', kind: 'integer', group: 'listen', env: ['PRODSERVER_BACKLOG', 'BACKLOG'], default: 1024, min: 1,
    max: 65535, help: 'Listen backlog (capped by net.core.somaxconn).'
  },

  {
    name: 'metrics-port', kind: 'integer', group: 'listen', env: ['PRODSERVER_METRICS_PORT'], min: 1, max: 65535, defaultText: 'off',
    help: 'Serve Prometheus metrics (GET /metrics), aggregated over all workers, on this separate port (by the primary in cluster mode).'
  },
  {
    name: 'metrics-host', kind: 'string', group: 'listen', env: ['PRODSERVER_METRICS_HOST'], default: '127.0.0.1',
    help: 'Interface of the metrics port; loopback by default so metrics are not public.'
  },

  // ── server tuning (per process) ──────────────────────────────────────────────────────────────
  {
    name: 'channel-timeout', kind: 'duration', group: 'server',
    env: ['PRODSERVER_CHANNEL_TIMEOUT', 'CHANNEL_TIMEOUT', 'WAITRESS_CHANNEL_TIMEOUT'],
    default: 120 * SECOND, bareUnit: 's', min: 1,
    help: 'Close a connection idle this long; never one with a request in flight (Waitress semantics).'
  },
  {
    name: 'cleanup-interval', kind: 'duration', group: 'server', env: ['PRODSERVER_CLEANUP_INTERVAL', 'WAITRESS_CLEANUP_INTERVAL'],
    default: 30 * SECOND, bareUnit: 's', min: 1, help: 'Sweep interval for idle and timed-out connections.'
  },
  {
    name: 'connection-limit', kind: 'integer', group: 'server',
    env: ['PRODSERVER_CONNECTION_LIMIT', 'CONNECTION_LIMIT', 'WAITRESS_CONNECTION_LIMIT'], default: 1000, min: 1,
    help: 'Connections served at once per process; more wait (paused, like Waitress), they are not reset.'
  },
  {
    name: 'keep-alive-timeout', kind: 'duration', group: 'server', env: ['PRODSERVER_KEEP_ALIVE_TIMEOUT'],
    bareUnit: 's', min: 1, defaultText: '= channel-timeout',
    help: "HTTP keep-alive idle timeout; keep it above the load balancer's idle timeout (60 s on AWS ALB)."
  },
  {
    name: 'headers-timeout', kind: 'duration', group: 'server', env: ['PRODSERVER_HEADERS_TIMEOUT'],
    default: 60 * SECOND, bareUnit: 's', min: 1, help: 'Time allowed to receive the request headers (slowloris): 408.'
  },
  {
    name: 'request-timeout', kind: 'duration', group: 'server', env: ['PRODSERVER_REQUEST_TIMEOUT'],
    default: 300 * SECOND, bareUnit: 's', min: 1, help: 'Time allowed to receive the whole request: 408.'
  },
  {
    name: 'recv-bytes', kind: 'size', group: 'server', env: ['PRODSERVER_RECV_BYTES', 'WAITRESS_RECV_BYTES'], min: 1024,
    defaultText: "Node's", help: 'Socket read high-water mark.'
  },
  {
    name: 'send-bytes', kind: 'size', group: 'server', env: ['PRODSERVER_SEND_BYTES', 'WAITRESS_SEND_BYTES'], min: 1024,
    defaultText: "Node's", help: 'Socket write high-water mark.'
  },
  {
    name: 'url-scheme', kind: 'enum', group: 'server', env: ['PRODSERVER_URL_SCHEME', 'WAITRESS_URL_SCHEME'], default: 'http',
    values: ['http', 'https'], help: 'Scheme the app sees when no trusted proxy says otherwise (https behind a TLS proxy).'
  },
  {
    name: 'trusted-proxy', kind: 'list', group: 'server', env: ['PRODSERVER_TRUSTED_PROXY', 'WAITRESS_TRUSTED_PROXY'],
    defaultText: 'none',
    help: 'Peers (IPs, CIDRs, "localhost", "*") whose X-Forwarded-* headers are trusted; others are stripped.'
  },
  {
    name: 'ident', kind: 'string', group: 'server', env: ['PRODSERVER_IDENT', 'WAITRESS_IDENT'], defaultText: 'none',
    help: 'Server: header value.'
  },
  {
    name: 'expose-tracebacks', kind: 'boolean', group: 'server', env: ['PRODSERVER_EXPOSE_TRACEBACKS', 'WAITRESS_EXPOSE_TRACEBACKS'],
    default: false, help: 'Stack traces in 500 bodies (refused when NODE_ENV=production); otherwise 5xx bodies are generic.'
  },
  {
    name: 'max-request-body-size', kind: 'size', group: 'server',
    env: ['PRODSERVER_MAX_REQUEST_BODY_SIZE', 'WAITRESS_MAX_REQUEST_BODY_SIZE', 'FASTIFY_BODY_LIMIT'], min: 1, defaultText: "Fastify's (1mb)",
    help: 'Largest request body accepted; larger gets 413.'
  },
  {
    name: 'max-request-header-size', kind: 'size', group: 'server',
    env: ['PRODSERVER_MAX_REQUEST_HEADER_SIZE', 'WAITRESS_MAX_REQUEST_HEADER_SIZE'], min: 1024, defaultText: "Node's (16kb)",
    help: 'Largest request head accepted; larger gets 431.'
  },

  {
    name: 'health-path', kind: 'string', group: 'server', env: ['PRODSERVER_HEALTH_PATH'], defaultText: 'off',
    help: 'Liveness path (e.g. /healthz): 200 while the event loop runs; answered before the app, never logged or counted.'
  },
  {
    name: 'ready-path', kind: 'string', group: 'server', env: ['PRODSERVER_READY_PATH'], defaultText: 'off',
    help: 'Readiness path (e.g. /readyz): 200 when not draining and the session store check passes, else 503 {ready:false,reason}.'
  },
  {
    name: 'drain-delay', kind: 'duration', group: 'server', env: ['PRODSERVER_DRAIN_DELAY'], bareUnit: 's', min: 0,
    defaultText: '5 s with ready-path, else 0',
    help: 'On shutdown, readiness answers 503 this long (still serving) before connections are drained, so a load balancer stops first.'
  },

  // ── Waitress knobs with no meaning on Node ───────────────────────────────────────────────────
  {
    name: 'asyncore-use-poll', kind: 'boolean', group: 'not-applicable',
    env: ['PRODSERVER_ASYNCORE_USE_POLL', 'WAITRESS_ASYNCORE_USE_POLL'], defaultText: '—',
    help: 'Accepted for Waitress compatibility; not applicable on Node (libuv uses epoll).'
  },
  {
    name: 'asyncore-loop-timeout', kind: 'duration', group: 'not-applicable', bareUnit: 's',
    env: ['PRODSERVER_ASYNCORE_LOOP_TIMEOUT', 'WAITRESS_ASYNCORE_LOOP_TIMEOUT'], defaultText: '—',
    help: 'Accepted for Waitress compatibility; not applicable on Node (libuv uses epoll).'
  },

  // ── sessions ─────────────────────────────────────────────────────────────────────────────────
  {
    name: 'session-store', kind: 'enum', group: 'session', env: ['PRODSERVER_SESSION_STORE', 'SESSION_STORE'],
    default: 'auto', values: ['auto', 'redis', 'file', 'memory'], pluginOption: 'store',
    help: 'Session store: auto picks memory under NODE_ENV=test, Redis when configured, else file.'
  },
  {
    name: 'session-secret', kind: 'secrets', group: 'session', env: ['PRODSERVER_SESSION_SECRET', 'SESSION_SECRET'],
    secret: true, pluginOption: 'secret', defaultText: 'required in production',
    help: 'Comma-separated cookie secrets, each ≥ 32 characters; the first signs, all verify.'
  },
  {
    name: 'session-ttl', kind: 'duration', group: 'session', env: ['PRODSERVER_SESSION_TTL', 'SESSION_TTL'],
    default: 86400 * SECOND, bareUnit: 's', min: 1000, pluginOption: 'ttl',
    help: 'Idle lifetime of a session; sliding; at least 1s (the cookie Expires attribute has one-second resolution).'
  },
  {
    // One limit for every store (lib/sessions/size-limit.ts): 256 KB is 64 times a whole cookie
    // store's 4 KB, while a default 200 MB worker can hold hundreds of such saves in flight.
    name: 'session-max-size', kind: 'size', group: 'session', env: ['PRODSERVER_SESSION_MAX_SIZE', 'SESSION_MAX_SIZE'],
    default: 256 * 1024, min: 1024, max: 64 * 1024 * 1024, pluginOption: 'maxSize',
    help: 'Largest session a save may write (its JSON, in bytes); a larger save fails that request with 413 and one log line.'
  },
  {
    name: 'session-cookie-name', kind: 'string', group: 'session', env: ['PRODSERVER_SESSION_COOKIE_NAME', 'SESSION_COOKIE_NAME'],
    default: 'sessionId', pluginOption: 'cookieName', help: 'Name of the session cookie.'
  },
  {
    name: 'session-cookie-secure', kind: 'enum', group: 'session',
    env: ['PRODSERVER_SESSION_COOKIE_SECURE', 'SESSION_COOKIE_SECURE'], default: 'auto', values: ['auto', 'true', 'false'],
    pluginOption: 'cookieSecure', help: 'Secure cookie attribute: auto = on when the request is https.'
  },
  {
    // Issue 14: merge = a save writes only the top-level members the request changed, atomically in
    // the store, so parallel requests changing different members all land; replace = the whole
    // session, last writer wins (what @fastify/session's stores do).
    name: 'session-writes', kind: 'enum', group: 'session', env: ['PRODSERVER_SESSION_WRITES', 'SESSION_WRITES'],
    default: 'merge', values: ['merge', 'replace'], pluginOption: 'writes',
    help: 'merge: a save patches only the top-level keys the request changed (parallel requests keep each other\'s changes); replace: whole-session writes, last writer wins.'
  },
  {
    name: 'session-dir', kind: 'string', group: 'session', env: ['PRODSERVER_SESSION_DIR', 'SESSION_DIR'],
    pluginOption: 'dir', defaultText: 'per-app dir under the OS temp dir',
    help: 'Directory of the file store, shared by all workers of the host; created 0700; an existing one must be ours (not a link, owned by this user, writable by it only).'
  },
  {
    name: 'redis-url', kind: 'string', group: 'session', env: ['PRODSERVER_REDIS_URL', 'REDIS_URL'], secret: false,
    pluginOption: 'redisUrl', defaultText: '—', help: 'redis:// or rediss:// (TLS) URL of the session Redis.'
  },
  {
    // Sentinel and Cluster: research §3.4 / pitfall 7. Credentials, db and TLS (rediss://) still come
    // from REDIS_URL when it is set; its host:port is then not used.
    name: 'redis-sentinels', kind: 'addresses', group: 'session', env: ['PRODSERVER_REDIS_SENTINELS', 'REDIS_SENTINELS'],
    pluginOption: 'redisSentinels', defaultText: '—',
    help: 'Sentinel host:port list (space or comma separated); the master is found by redis-sentinel-name. Exclusive with redis-cluster-nodes.'
  },
  {
    name: 'redis-sentinel-name', kind: 'string', group: 'session', env: ['PRODSERVER_REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_NAME'],
    default: 'mymaster', pluginOption: 'redisSentinelName', help: 'Name of the master group the sentinels monitor.'
  },
  {
    name: 'redis-sentinel-password', kind: 'string', group: 'session',
    env: ['PRODSERVER_REDIS_SENTINEL_PASSWORD', 'REDIS_SENTINEL_PASSWORD'], secret: true,
    pluginOption: 'redisSentinelPassword', defaultText: '—', help: 'Password of the sentinels themselves (requirepass on the sentinels).'
  },
  {
    name: 'redis-cluster-nodes', kind: 'addresses', group: 'session', env: ['PRODSERVER_REDIS_CLUSTER_NODES', 'REDIS_CLUSTER_NODES'],
    pluginOption: 'redisClusterNodes', defaultText: '—',
    help: 'Redis Cluster startup nodes, host:port list; the other nodes are discovered. Exclusive with redis-sentinels.'
  },
  {
    name: 'redis-ca-file', kind: 'string', group: 'session', env: ['PRODSERVER_REDIS_CA_FILE', 'REDIS_CA_FILE'],
    pluginOption: 'redisCaFile', defaultText: 'system CAs',
    help: 'PEM file of the CA(s) that signed the Redis server certificate (rediss://); read once at boot.'
  },
  {
    name: 'session-redis-timeout', kind: 'duration', group: 'session',
    env: ['PRODSERVER_SESSION_REDIS_TIMEOUT', 'SESSION_REDIS_TIMEOUT'], default: 1000, bareUnit: 'ms', min: 10,
    pluginOption: 'redisTimeout', help: 'Bound on every session store operation: Redis, and also the file store or a store object passed in code (bare number = milliseconds).'
  },
  {
    name: 'session-redis-prefix', kind: 'string', group: 'session',
    env: ['PRODSERVER_SESSION_REDIS_PREFIX', 'SESSION_REDIS_PREFIX'], default: 'sess:', pluginOption: 'redisPrefix',
    help: 'Key prefix of session keys in Redis.'
  }
] as const satisfies readonly KnobDefinition[]

export type Knob = (typeof KNOBS)[number]
export type KnobName = Knob['name']

interface KindValue {
  boolean: boolean
  integer: number
  number: number
  duration: number
  size: number
  string: string
  enum: string
  addresses: ListenAddress[]
  octal: number
  secrets: Secret[]
  list: string[]
}

export interface ListenAddress { host: string, port: number }

/** Parsed values: durations in milliseconds, sizes in bytes. Unset optional knobs are `undefined`. */
export type KnobValues = {
  -readonly [K in Knob as K['name']]: K extends { values: readonly (infer V)[] }
    ? V | (K extends { default: unknown } ? never : undefined)
    : KindValue[K['kind']] | (K extends { default: unknown } ? never : undefined)
}

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S

/** Options in code: camelCase knob names; raw values are accepted as in env (`'30s'`, `'1mb'`, `true`). */
export type KnobOptions = { [K in KnobName as CamelCase<K>]?: unknown }

export function camelCase (name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

const byName = new Map<string, KnobDefinition>(KNOBS.map((k) => [k.name, k]))
const byShort = new Map<string, KnobDefinition>((KNOBS as readonly KnobDefinition[]).filter((k) => k.short !== undefined).map((k) => [k.short as string, k]))

export function knobByName (name: string): KnobDefinition | undefined {
  return byName.get(name)
}

export function knobByShort (letter: string): KnobDefinition | undefined {
  return byShort.get(letter)
}

export function knobsInGroup (group: KnobGroup): KnobDefinition[] {
  return KNOBS.filter((k) => k.group === group)
}
