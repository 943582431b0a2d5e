/**
 * Which session store, and why: a PURE decision (no I/O), exactly DESIGN.md "Session store
 * selection". open-store.ts performs it (connects, falls back). Kept pure so every branch is a
 * unit-testable table row and `planServer()` can report the same choice without starting anything.
 *
 * 1. SESSION_STORE set → that store. `redis` without a URL or client is a configuration error;
 *    `memory` with more than one worker is refused: each worker would hold its own sessions and a
 *    user would be logged out whenever the kernel balances them to another worker (pitfall 15).
 * 2. auto: NODE_ENV=test → memory; Redis configured → Redis, falling back to the file store when
 *    it is unreachable at boot (NOW LMS's seed behaviour); otherwise → file (shared by the workers
 *    of this host).
 *
 * "Redis configured" = REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES or a client in code. The
 * knob combinations that cannot work are refused here too, so `prodserver config` (planServer calls
 * this) and the plugin reject them with the same line.
 */
import type { ListenAddress } from '../config/knobs'
import { redactUrl } from '../config/values'
import { KnobError } from '../config/values'

export type StoreKind = 'redis' | 'file' | 'memory'

export interface SelectionInput {
  store: 'auto' | StoreKind
  /** Where `store` came from, for messages: `env SESSION_STORE`, `option store`, `default`. */
  storeSource?: string
  nodeEnv?: string
  redisUrl?: string
  /** REDIS_SENTINELS (Sentinel mode; the master name is redisSentinelName). */
  redisSentinels?: readonly ListenAddress[]
  redisSentinelName?: string
  /** REDIS_CLUSTER_NODES (Cluster mode). */
  redisClusterNodes?: readonly ListenAddress[]
  /** REDIS_CA_FILE (only checked for consistency here; read by open-store.ts). */
  redisCaFile?: string
  /** knob name → source (`env REDIS_SENTINELS`, `option redisSentinels`…), for messages. */
  sources?: Readonly<Record<string, string>>
  hasRedisClient?: boolean
  workerCount?: number
  /** File store directory, for the reason text. */
  dir?: string
}

export interface Selection {
  kind: StoreKind
  /** One human sentence: logged once and exposed as `fastify.sessionBackend.reason`. */
  reason: string
  /** Redis was picked by `auto`: if unreachable at boot, use the file store (with one warning). */
  fallbackToFile: boolean
}

export function selectStore (input: SelectionInput): Selection {
  const workers = input.workerCount ?? 1
  checkRedisCombination(input)
  const redisWhere = describeRedis(input)
  const setBy = sourceName(input.storeSource)

  switch (input.store) {
    case 'redis':
      if (redisWhere === undefined) {
        throw new KnobError(`${setBy}=redis needs a Redis: REDIS_URL is not set; accepted: set REDIS_URL (redis:// or rediss://), REDIS_SENTINELS or REDIS_CLUSTER_NODES, or pass redisClient, or choose another store`)
      }
      return { kind: 'redis', reason: `${setBy}=redis (${redisWhere})`, fallbackToFile: false }
    case 'memory':
      if (workers > 1) {
        throw new KnobError(`${setBy}=memory is refused with ${workers} workers (--workers / PRODSERVER_WORKERS): memory sessions are not shared between processes; accepted: file or redis, or 1 worker`)
      }
      return { kind: 'memory', reason: `${setBy}=memory`, fallbackToFile: false }
    case 'file':
      return { kind: 'file', reason: `${setBy}=file${input.dir !== undefined ? ` (${input.dir})` : ''}`, fallbackToFile: false }
    default:
      break
  }

  // auto
  if (input.nodeEnv === 'test') {
    return { kind: 'memory', reason: 'auto: NODE_ENV=test', fallbackToFile: false }
  }
  if (redisWhere !== undefined) {
    return { kind: 'redis', reason: `auto: ${redisWhere} is configured`, fallbackToFile: true }
  }
  return {
    kind: 'file',
    reason: `auto: no REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES; file store shared by the workers of this host${input.dir !== undefined ? ` (${input.dir})` : ''}`,
    fallbackToFile: false
  }
}

/** Where the Redis is, for the reason text (no password: redactUrl). A client in code wins. */
function describeRedis (input: SelectionInput): string | undefined {
  if (input.hasRedisClient === true) return 'the redisClient passed in code'
  const list = (a: readonly ListenAddress[]): string => a.map((x) => `${x.host}:${x.port}`).join(',')
  if (input.redisSentinels !== undefined && input.redisSentinels.length > 0) {
    return `${knobSource(input, 'redis-sentinels', 'REDIS_SENTINELS')} ${list(input.redisSentinels)} (master ${input.redisSentinelName ?? 'mymaster'})`
  }
  if (input.redisClusterNodes !== undefined && input.redisClusterNodes.length > 0) {
    return `${knobSource(input, 'redis-cluster-nodes', 'REDIS_CLUSTER_NODES')} ${list(input.redisClusterNodes)}`
  }
  return input.redisUrl !== undefined ? `REDIS_URL ${redactUrl(input.redisUrl)}` : undefined
}

/**
 * One-line refusals of Redis settings that contradict each other:
 * - Sentinel and Cluster are two different topologies; a client cannot be both.
 * - A CA file only means something for TLS: with an explicit `redis://` URL it would be silently
 *   unused (or, worse, we would switch to TLS the URL did not ask for).
 */
function checkRedisCombination (input: SelectionInput): void {
  const sentinels = input.redisSentinels !== undefined && input.redisSentinels.length > 0
  const cluster = input.redisClusterNodes !== undefined && input.redisClusterNodes.length > 0
  if (sentinels && cluster) {
    throw new KnobError(`${knobSource(input, 'redis-sentinels', 'REDIS_SENTINELS')} cannot be combined with ${knobSource(input, 'redis-cluster-nodes', 'REDIS_CLUSTER_NODES')}; accepted: either Sentinel (REDIS_SENTINELS) or Cluster (REDIS_CLUSTER_NODES)`)
  }
  if (input.redisCaFile !== undefined && input.redisUrl !== undefined && /^redis:\/\//i.test(input.redisUrl)) {
    throw new KnobError(`${knobSource(input, 'redis-ca-file', 'REDIS_CA_FILE')} needs TLS but REDIS_URL is ${redactUrl(input.redisUrl)}; accepted: a rediss:// URL with a CA file, or no CA file`)
  }
}

function knobSource (input: SelectionInput, knob: string, fallback: string): string {
  const s = input.sources?.[knob]
  if (s === undefined || s === 'default') return fallback
  return s.replace(/^env /, '')
}

/** `env SESSION_STORE` → `SESSION_STORE`, `option store` → `option store`, default → `SESSION_STORE`. */
function sourceName (source: string | undefined): string {
  if (source === undefined || source === 'default') return 'SESSION_STORE'
  return source.replace(/^env /, '')
}
