/**
 * planServer(): knobs and resources in, the whole resolved plan out, with the source of every
 * value. Pure, apart from two defaults a caller can replace: the resources (readResources(), read
 * only when cpus/memory-mb are not both overridden) and the environment (process.env, when plain
 * options rather than a resolution are passed and no `env` is given).
 */
import { resolveKnobs, isResolved, type ResolvedKnobs } from '../config/resolve'
import { knobByName, knobsInGroup, type KnobOptions } from '../config/knobs'
import { formatKnobValue, KnobError } from '../config/values'
import { selectStore } from '../sessions/select'
import type { ListenPlan, OpsPlan, Plan, Resources, ServerPlan, SessionPlan } from './types'
import { readResources } from '../system/resources'
import { decideWorkers, MAX_THREADS, type WorkerDecision } from './workers'
import { decideHeap } from './heap'
import { decideSendBudget } from './send-budget'
import { applyOverrides } from './overrides'

export interface PlanOptions extends KnobOptions {
  /** Environment to resolve knobs from (PRODSERVER_*, aliases, NODE_ENV). Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Parsed CLI flags (highest precedence). */
  flags?: Record<string, string | boolean>
}

/**
 * The idle time of a proxy's pooled backend connections: nginx's upstream keepalive_timeout and
 * AWS ALB's idle timeout default to 60 s. A keep-alive at or below it lets the proxy reuse a
 * connection Node is closing (502s). Node itself closes at keepAliveTimeout + 1 s (its
 * HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER in Node 20, the keepAliveTimeoutBuffer default in 22 and
 * 24; checked against a real socket on each).
 */
const LB_IDLE_TIMEOUT_MS = 60_000
const NOT_APPLICABLE = 'not applicable on Node (libuv uses epoll)'
const SINGLE_HEAP_STEP = "Heap: Node's default (single process, no --max-old-space-size; set one in NODE_OPTIONS to cap it)"

export function planServer (knobs: PlanOptions | ResolvedKnobs = {}, resources?: Resources): Plan {
  const r = isResolved(knobs) ? knobs : resolveFromOptions(knobs)
  const v = r.values
  const sources: Record<string, string> = { ...r.sources }
  const warnings = [...r.warnings]

  const needDetection = v.cpus === undefined || v['memory-mb'] === undefined
  const detected = resources ?? (needDetection ? readResources() : undefined)
  const res = applyOverrides(detected, { cpus: v.cpus, memoryMb: v['memory-mb'] }, { cpus: sources.cpus, memoryMb: sources['memory-mb'] })
  if (detected !== undefined) {
    if (v.cpus === undefined) sources.cpus = `detected: ${detected.source}`
    if (v['memory-mb'] === undefined) sources['memory-mb'] = `detected: ${detected.source}`
  }

  const envThreads = threadpoolFromEnv(r.context?.uvThreadpoolSize, warnings)
  const decision = decideWorkers({
    cpus: res.cpus,
    memoryMb: res.memoryMb,
    workerMemoryMb: v['worker-memory-mb'],
    cluster: v.cluster,
    workers: v.workers,
    threads: v.threads,
    envThreadpoolSize: envThreads
  })
  sources.mode = modeSource(decision, v.cluster, sources)
  sources.workers = workersSource(decision, sources.workers)
  sources.threads = threadsSource(decision, sources.threads)
  if (v.threads !== undefined && envThreads !== undefined && envThreads !== v.threads) {
    warnings.push(`threads=${v.threads} (${sources.threads}) replaces UV_THREADPOOL_SIZE=${envThreads} from the environment`)
  }

  // The cap keeps N workers inside the memory they were counted for. One process has all of it:
  // capping it at one worker's share would only crash a bigger app, so single mode applies none.
  const heap = decision.mode === 'cluster'
    ? decideHeap({ workers: decision.workers, memoryMb: res.memoryMb, workerMemoryMb: v['worker-memory-mb'] })
    : { heapMb: 0, budgetMb: res.memoryMb, step: SINGLE_HEAP_STEP }
  decision.formula.steps.push(heap.step)
  sources.heapMb = decision.mode !== 'cluster'
    ? 'single-process mode: not capped'
    : heap.budgetMb < v['worker-memory-mb'] ? 'memory-mb / workers × 0.75' : `worker-memory-mb (${sources['worker-memory-mb']}) × 0.75`
  if (decision.workersBy === 'explicit' && decision.workers * v['worker-memory-mb'] > res.memoryMb) {
    warnings.push(`workers=${decision.workers} (${sources.workers}) × worker-memory-mb ${v['worker-memory-mb']} = ${decision.workers * v['worker-memory-mb']} MB is more than the ${res.memoryMb} MB available; each heap is capped at ${heap.heapMb} MB`)
  }

  const sendBudget = decideSendBudget({ workers: decision.workers, memoryMb: res.memoryMb, workerMemoryMb: v['worker-memory-mb'] })
  decision.formula.steps.push(sendBudget.step)
  const server = { ...planServerOptions(r, sources, warnings), sendBudgetBytes: sendBudget.bytes }
  const listen = planListen(r)
  const sessions = planSessions(r, decision.workers)
  sources.sessions = sessions.reason
  const ops = planOps(r, sources)

  const notApplicable: Record<string, string> = {}
  for (const knob of knobsInGroup('not-applicable')) {
    if (r.sources[knob.name as keyof typeof r.sources] !== 'default') notApplicable[knob.name] = NOT_APPLICABLE
  }

  return {
    mode: decision.mode,
    workers: decision.workers,
    threads: decision.threads,
    resources: res,
    formula: decision.formula,
    heapMb: heap.heapMb,
    server,
    listen,
    supervisor: {
      workerTimeoutMs: v['worker-timeout'],
      gracefulTimeoutMs: v['graceful-timeout'],
      maxRequests: v['max-requests'],
      maxRequestsJitter: v['max-requests-jitter']
    },
    sessions,
    ops,
    memory: {
      budgetMb: v['worker-memory-mb'],
      threshold: v['worker-memory-threshold'],
      samples: v['worker-memory-samples'],
      intervalMs: v['worker-memory-interval']
    },
    logs: { level: v['log-level'], pretty: v['pretty-logs'] },
    launch: { imports: v.import ?? [], requires: v.require ?? [], watch: v.watch },
    sources,
    notApplicable,
    warnings
  }
}

function resolveFromOptions (options: PlanOptions): ResolvedKnobs {
  const { env = process.env, flags, ...rest } = options
  return resolveKnobs({ options: rest as Record<string, unknown>, env, flags })
}

/**
 * UV_THREADPOOL_SIZE set by the user is libuv's own knob: honoured (below the threads knob), but a
 * value libuv would clamp or ignore is reported rather than passed on.
 */
function threadpoolFromEnv (raw: string | undefined, warnings: string[]): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  const n = Number(raw.trim())
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    warnings.push(`UV_THREADPOOL_SIZE=${JSON.stringify(raw)} in the environment is ignored; accepted: a whole number from 1 to ${MAX_THREADS}`)
    return undefined
  }
  return n
}

function modeSource (d: WorkerDecision, cluster: boolean, sources: Record<string, string>): string {
  if (d.mode === 'single') return sources.cluster
  if (cluster) return sources.cluster
  return `workers > 1 (${sources.workers})`
}

function workersSource (d: WorkerDecision, knobSource: string): string {
  if (d.workersBy === 'explicit') return knobSource
  if (d.workersBy === 'formula') return 'formula'
  return 'single-process mode'
}

function threadsSource (d: WorkerDecision, knobSource: string): string {
  switch (d.threadsBy) {
    case 'explicit': return knobSource
    case 'env': return 'env UV_THREADPOOL_SIZE'
    case 'formula': return 'formula (single process: optimal)'
    case 'node-default': return "Node's default libuv pool"
  }
}

function planServerOptions (r: ResolvedKnobs, sources: Record<string, string>, warnings: string[]): Omit<ServerPlan, 'sendBudgetBytes'> {
  const v = r.values
  const keepAlive = v['keep-alive-timeout'] ?? v['channel-timeout']
  if (v['keep-alive-timeout'] === undefined) sources['keep-alive-timeout'] = `= channel-timeout (${sources['channel-timeout']})`
  if (keepAlive <= LB_IDLE_TIMEOUT_MS) {
    const knob = knobByName('keep-alive-timeout')!
    warnings.push(`keep-alive-timeout ${formatKnobValue(knob, keepAlive)} (${sources['keep-alive-timeout']}) is not above the 60 s a proxy keeps an idle connection to its backend ` +
      '(nginx upstream keepalive_timeout 60s, AWS ALB idle timeout 60 s; HAProxy purges idle server connections after pool-purge-delay, 5 s by default); ' +
      'a proxy that reuses a connection just as Node closes it answers 502. Node closes an idle connection keep-alive-timeout + 1 s after its last response: ' +
      "set keep-alive-timeout above the proxy's idle timeout")
  }
  return {
    channelTimeoutMs: v['channel-timeout'],
    cleanupIntervalMs: v['cleanup-interval'],
    connectionLimit: v['connection-limit'],
    keepAliveTimeoutMs: keepAlive,
    headersTimeoutMs: v['headers-timeout'],
    requestTimeoutMs: v['request-timeout'],
    recvBytes: v['recv-bytes'],
    sendBytes: v['send-bytes'],
    urlScheme: v['url-scheme'],
    trustedProxy: v['trusted-proxy'],
    ident: v.ident,
    exposeTracebacks: v['expose-tracebacks'],
    maxRequestBodySize: v['max-request-body-size'],
    maxRequestHeaderSize: v['max-request-header-size']
  }
}

/** Without a readiness path nobody can see a drain coming, so waiting before it would only slow shutdowns. */
const DRAIN_DELAY_WITH_READY_PATH_MS = 5000

function planOps (r: ResolvedKnobs, sources: Record<string, string>): OpsPlan {
  const v = r.values
  for (const name of ['health-path', 'ready-path'] as const) {
    const path = v[name]
    if (path !== undefined && !/^\/[^\s?#]*$/.test(path)) {
      throw new KnobError(`${name}=${JSON.stringify(path)} (${sources[name]}) is not a URL path; accepted: a path starting with / and without spaces, ? or #, e.g. /healthz`)
    }
  }
  if (v['health-path'] !== undefined && v['health-path'] === v['ready-path']) {
    throw new KnobError(`health-path and ready-path are both ${v['health-path']}; accepted: two different paths (liveness and readiness answer differently)`)
  }
  let drainDelayMs = v['drain-delay']
  if (drainDelayMs === undefined) {
    drainDelayMs = v['ready-path'] !== undefined ? DRAIN_DELAY_WITH_READY_PATH_MS : 0
    sources['drain-delay'] = v['ready-path'] !== undefined ? 'default (ready-path is set)' : 'default (no ready-path)'
  }
  return {
    healthPath: v['health-path'],
    readyPath: v['ready-path'],
    drainDelayMs,
    metricsPort: v['metrics-port'],
    metricsHost: v['metrics-host'],
    controlDir: v['control-dir'],
    pidFile: v['pid-file']
  }
}

function planListen (r: ResolvedKnobs): ListenPlan {
  const v = r.values
  if (v['unix-socket'] !== undefined) return { kind: 'unix', path: v['unix-socket'], perms: v['unix-socket-perms'], backlog: v.backlog }
  return { kind: 'tcp', addresses: v.listen ?? [{ host: v.host, port: v.port }], backlog: v.backlog }
}

/** The store the sessions plugin will pick (DESIGN "Session store selection"), before Redis is probed. */
function planSessions (r: ResolvedKnobs, workers: number): SessionPlan {
  const v = r.values
  const selection = selectStore({
    store: v['session-store'] as SessionPlan['requested'],
    storeSource: r.sources['session-store'],
    nodeEnv: r.context?.nodeEnv,
    redisUrl: v['redis-url'],
    redisSentinels: v['redis-sentinels'],
    redisSentinelName: v['redis-sentinel-name'],
    redisClusterNodes: v['redis-cluster-nodes'],
    redisCaFile: v['redis-ca-file'],
    sources: r.sources,
    workerCount: workers,
    dir: v['session-dir']
  })
  if (selection.kind === 'memory' && workers > 1) {
    // selectStore refuses this for an explicit SESSION_STORE; auto under NODE_ENV=test must not
    // quietly pick it either: each worker would hold its own sessions.
    throw new KnobError(`NODE_ENV=test picks the memory session store, which is refused with ${workers} workers; accepted: SESSION_STORE=file or redis, or 1 worker`)
  }
  return {
    requested: v['session-store'] as SessionPlan['requested'],
    expected: selection.kind,
    reason: selection.reason,
    fallbackToFile: selection.fallbackToFile
  }
}
