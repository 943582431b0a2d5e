/**
 * Options of the sessions plugin: read, defaulted and validated ONCE, at registration
 * (@fastify/under-pressure's style). The per-request hooks only look at the result.
 *
 * Session knobs come from the knob table (lib/config/knobs.ts, group 'session'); an option in code
 * overrides the environment (DESIGN.md precedence). Plugin option names are the knobs'
 * `pluginOption` (`store`, `secret`, `ttl`…), so a bad value is reported as `option store=…`, and an
 * env value as `SESSION_STORE=…`: one line naming the source, the value and what is accepted.
 */
import path from 'node:path'
import { camelCase, knobsInGroup, type ListenAddress } from '../config/knobs'
import { resolveKnobs } from '../config/resolve'
import { KnobError, parseDuration } from '../config/values'
import type { Secret } from '../config/secret-list'
import { defaultSessionDir } from './stores/file/default-dir'
import { OPTION_RULES, readFastifySessionOptions, type FastifySessionOptions, type Priority, type SameSite, type Signer } from './options'
import type { RedisClient } from './stores/redis'
import { isIoredis } from './stores/redis/client'
import { isNodeRedis } from './stores/redis/node-redis'
import type { SessionRecordStore } from './stores/types'
import { CallbackSessionStore, isCallbackStore, type CallbackSessionStoreApi } from './stores/callback'

export { defaultSessionDir }

export type StoreName = 'auto' | 'redis' | 'file' | 'memory'
export type CookieSecure = 'auto' | 'true' | 'false'
export type SessionWrites = 'merge' | 'replace'

/** The default boot timeout for Redis: long enough for a TLS handshake, short enough to boot. */
export const DEFAULT_BOOT_TIMEOUT_MS = 5000

/**
 * The options: ours (knobs: the environment's defaults, overridden here) and @fastify/session 11's,
 * which keep their meaning. Each one's default, accepted values and verdict are in the README's
 * options table, generated from lib/sessions/options.ts and the knob table.
 */
export interface SessionsOptions {
  /**
   * `auto` (default), `redis`, `file`, `memory`, or a store object you keep ownership of: one of
   * ours, or any @fastify/session / express-session store (callback get/set/destroy, optional touch).
   */
  store?: StoreName | SessionRecordStore | CallbackSessionStoreApi
  /**
   * One secret (a string, used as given, or a Buffer, used as bytes) or an array of them (in env:
   * a comma list); each ≥ 32 characters or bytes; the first signs. Or a signer object
   * `{ sign, unsign }` (@fastify/cookie's custom signer).
   */
  secret?: string | Buffer | Array<string | Buffer> | Signer
  /** HMAC hash of the cookie signature (default `sha256`). */
  algorithm?: string
  /** Idle lifetime, sliding: a number of seconds or `'30m'`, `'1h'`… (default 1 day). */
  ttl?: number | string
  /** Largest session JSON a save may write: bytes or `'512kb'` (default 256 KB); larger → 413. */
  maxSize?: number | string
  cookieName?: string
  /** Prefix of the cookie value (`'s:'` for express-session cookies; default none). */
  cookiePrefix?: string
  /** `'auto'` (Secure on https), `true` or `false`. */
  cookieSecure?: 'auto' | boolean
  /** @fastify/session's cookie options (`maxAge` in milliseconds = ttl; `expires` is refused). */
  cookie?: {
    path?: string
    domain?: string
    sameSite?: SameSite | 'Lax' | 'Strict' | 'None'
    httpOnly?: boolean
    secure?: 'auto' | boolean
    /** Milliseconds (= ttl); null: a browser-session cookie (no Expires; the store still keeps the session ttl). */
    maxAge?: number | null
    partitioned?: boolean
    priority?: Priority
  }
  /** Makes new session ids: 1 to 128 characters of A-Z a-z 0-9 _ - (default: 32 random). */
  idGenerator?: (request?: any) => string
  /** Save new, unmodified sessions too (default false; true warns once). */
  saveUninitialized?: boolean
  /** Re-save the session and cookie on every response (default false; true warns once). */
  rolling?: boolean
  /**
   * `'merge'` (default): a save writes only the top-level keys the request changed, atomically, so
   * parallel requests changing different keys keep each other's changes; `'replace'`: whole-session
   * writes, last writer wins.
   */
  writes?: SessionWrites
  /** Directory of the file store (default: a per-app directory under the OS temp dir). */
  dir?: string
  redisUrl?: string
  /** Sentinel mode: `'host:port host:port'` or a list; credentials/TLS still from redisUrl. */
  redisSentinels?: string | Array<string | ListenAddress>
  /** Master group name the sentinels monitor (default `mymaster`). */
  redisSentinelName?: string
  redisSentinelPassword?: string
  /** Cluster mode: startup nodes, `'host:port,host:port'` or a list. */
  redisClusterNodes?: string | Array<string | ListenAddress>
  /** PEM CA file for rediss:// (read once at boot). */
  redisCaFile?: string
  /** Bound on every store operation: a number of milliseconds or `'1s'` (default 1000 ms). */
  redisTimeout?: number | string
  redisPrefix?: string
  /**
   * An existing client, used as configured and never closed: ioredis (5 or 6) Redis or Cluster
   * (e.g. @fastify/redis's), or a node-redis client, cluster or sentinel (connected first).
   */
  redisClient?: RedisClient
  /** How long registration waits for Redis to be ready: ms or `'5s'` (default 5 s). */
  bootTimeout?: number | string
}

export interface SessionConfig {
  store: StoreName
  /** A store object given in code, if any. */
  customStore?: SessionRecordStore
  /** undefined = not configured (secrets.ts decides). */
  secrets?: Secret[]
  ttlMs: number
  /** session-max-size: the largest session JSON (UTF-8 bytes) a save may write. */
  maxSessionBytes: number
  cookieName: string
  cookieSecure: CookieSecure
  /** @fastify/session's options beyond the knobs: cookie attributes, prefix, signer, id generator… */
  fastifySession: FastifySessionOptions
  writes: SessionWrites
  dir: string
  dirIsDefault: boolean
  redisUrl?: string
  redisSentinels?: ListenAddress[]
  redisSentinelName: string
  redisSentinelPassword?: string
  redisClusterNodes?: ListenAddress[]
  redisCaFile?: string
  redisClient?: RedisClient
  timeoutMs: number
  redisPrefix: string
  bootTimeoutMs: number
  nodeEnv?: string
  /** PRODSERVER_WORKER_COUNT, set by the launcher for its workers (1 when absent). */
  workerCount: number
  /** knob name → where its value came from (`env SESSION_STORE`, `option store`, `default`). */
  sources: Record<string, string>
  /** Resolution warnings to log once (two env names of one knob with different values). */
  warnings: string[]
}

const SESSION_KNOBS = knobsInGroup('session')

export function readSessionConfig (options: SessionsOptions = {}, env: NodeJS.ProcessEnv = process.env): SessionConfig {
  const opts = options as Record<string, unknown>
  const fastifySession = readFastifySessionOptions(opts)
  // resolveKnobs reads options under the camelCase knob name (`sessionStore`); the plugin's public
  // names are the knobs' pluginOption (`store`). Translate in, and translate error messages back.
  const renamed: Record<string, unknown> = {}
  const rename: Array<[string, string]> = []
  let customStore: SessionRecordStore | undefined
  let callbackStore: CallbackSessionStoreApi | undefined
  for (const knob of SESSION_KNOBS) {
    const name = knob.pluginOption ?? camelCase(knob.name)
    let value = opts[name]
    if (name === 'store' && isStoreObject(value)) {
      customStore = value
      value = undefined
    } else if (name === 'store' && isCallbackStore(value)) {
      // A @fastify/session / express-session store: behind our contract (stores/callback.ts),
      // wrapped below, once the store timeout that bounds its calls is known.
      callbackStore = value
      value = undefined
    }
    if (name === 'secret' && fastifySession.signer !== undefined) value = undefined
    // @fastify/session's spellings of two knobs (readFastifySessionOptions checked they agree).
    if (name === 'cookieSecure' && value === undefined && fastifySession.cookieSecure !== undefined) value = String(fastifySession.cookieSecure)
    if (name === 'ttl' && fastifySession.maxAgeMs !== undefined) {
      if (value !== undefined && parseDuration(value, 's') !== fastifySession.maxAgeMs) {
        throw new KnobError(`option cookie.maxAge=${fastifySession.maxAgeMs} (milliseconds) and option ttl=${JSON.stringify(value)} (a bare number means seconds) disagree; accepted: one of them, or both meaning the same lifetime`)
      }
      value = `${fastifySession.maxAgeMs}ms`
    }
    if (value !== undefined) renamed[camelCase(knob.name)] = value
    rename.push([`option ${camelCase(knob.name)}`, `option ${name}`])
  }

  let resolved
  try {
    resolved = resolveKnobs({ options: renamed, env, knobs: SESSION_KNOBS })
  } catch (err) {
    if (err instanceof KnobError) {
      let message = err.message
      for (const [from, to] of rename) message = message.split(from).join(to)
      throw new KnobError(message)
    }
    throw err
  }
  const v = resolved.values
  const sources: Record<string, string> = {}
  for (const [name, source] of Object.entries(resolved.sources)) {
    sources[name] = rename.reduce((s, [from, to]) => s.split(from).join(to), source)
  }
  if (fastifySession.maxAgeMs !== undefined && opts.ttl === undefined) sources['session-ttl'] = 'option cookie.maxAge'
  if (fastifySession.cookieSecure !== undefined && opts.cookieSecure === undefined) sources['session-cookie-secure'] = 'option cookie.secure'

  const bootTimeoutMs = options.bootTimeout === undefined
    ? DEFAULT_BOOT_TIMEOUT_MS
    : parseDuration(options.bootTimeout, 'ms')
  if (bootTimeoutMs === undefined || bootTimeoutMs < 1) {
    throw new KnobError(`option bootTimeout=${JSON.stringify(options.bootTimeout)} is not valid; accepted: a duration such as 500ms or 5s (a bare number means milliseconds)`)
  }

  const redisClient = options.redisClient
  if (redisClient !== undefined && !isIoredis(redisClient) && !isNodeRedis(redisClient)) {
    throw new KnobError(`option redisClient is not valid; accepted: ${OPTION_RULES.find((r) => r.name === 'redisClient')?.accepted ?? ''}`)
  }

  const workerCount = parseWorkerCount(env.PRODSERVER_WORKER_COUNT)
  const dir = v['session-dir'] ?? defaultSessionDir()

  return {
    store: v['session-store'] as StoreName,
    customStore: customStore ?? (callbackStore !== undefined ? new CallbackSessionStore(callbackStore, { timeoutMs: v['session-redis-timeout'] }) : undefined),
    secrets: v['session-secret'],
    ttlMs: v['session-ttl'],
    maxSessionBytes: v['session-max-size'],
    cookieName: v['session-cookie-name'],
    cookieSecure: v['session-cookie-secure'] as CookieSecure,
    fastifySession,
    writes: v['session-writes'] as SessionWrites,
    dir: path.resolve(dir),
    dirIsDefault: v['session-dir'] === undefined,
    redisUrl: v['redis-url'],
    redisSentinels: v['redis-sentinels'],
    redisSentinelName: v['redis-sentinel-name'],
    redisSentinelPassword: v['redis-sentinel-password'],
    redisClusterNodes: v['redis-cluster-nodes'],
    redisCaFile: v['redis-ca-file'],
    redisClient,
    timeoutMs: v['session-redis-timeout'],
    redisPrefix: v['session-redis-prefix'],
    bootTimeoutMs,
    nodeEnv: env.NODE_ENV,
    workerCount,
    sources,
    // "unknown variable PRODSERVER_…" warnings concern every knob: the launcher reports those.
    warnings: resolved.warnings.filter((w) => !w.startsWith('unknown variable'))
  }
}

function parseWorkerCount (raw: string | undefined): number {
  if (raw === undefined || raw === '') return 1
  const n = Number(raw)
  return Number.isInteger(n) && n >= 1 ? n : 1
}

function isStoreObject (value: unknown): value is SessionRecordStore {
  if (typeof value !== 'object' || value === null) return false
  const s = value as Record<string, unknown>
  return ['get', 'set', 'touch', 'destroy', 'check', 'close'].every((m) => typeof s[m] === 'function') &&
    (s.kind === 'redis' || s.kind === 'file' || s.kind === 'memory' || s.kind === 'custom')
}
