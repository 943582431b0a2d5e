/**
 * What the primary and its workers say to each other: the env a worker is forked with, and the
 * IPC messages. One place, so both sides agree on every name.
 *
 * Workers are told what to do over IPC, never with signals: Ctrl-C sends SIGINT to the whole
 * process group, and close-with-grace style handlers treat SIGHUP/SIGUSR2 as "shut down"
 * (research §4.5, pitfall 11), so only the primary listens to signals.
 */
import cluster from 'node:cluster'
import { INTERNAL_SESSION_DIR_ENV } from '../sessions/stores/file/default-dir'
import type { Plan } from '../plan/types'
import type { MetricsJSON } from '../ops/types'
import type { HeapUse } from '../system/process-memory'

/** Env names set by the primary for its workers (resolve.ts never warns about these prefixes). */
export const WORKER_ENV = {
  /** The serialized plan: workers do not re-plan (the primary's resources and knobs decide). */
  plan: 'PRODSERVER_INTERNAL_PLAN',
  /** The primary's generated session secret, the same for every worker and across reloads. */
  sessionSecret: 'PRODSERVER_INTERNAL_SESSION_SECRET',
  /** The private session directory the primary made when the default one was taken (default-dir.ts). */
  sessionDir: INTERNAL_SESSION_DIR_ENV,
  /** Target worker count, so the sessions plugin can refuse a per-process memory store. */
  workerCount: 'PRODSERVER_WORKER_COUNT'
} as const

/** Every message carries this key so the app's own `process.send` traffic is never mistaken for ours. */
export const TAG = 'prodserver'

export type WorkerMessage =
  | { prodserver: 1, type: 'ready', addresses: string[], heap: HeapUse }
  | { prodserver: 1, type: 'boot-error', message: string, stack?: string }
  | { prodserver: 1, type: 'heartbeat', requests: number, heap: HeapUse }
  | { prodserver: 1, type: 'recycle', requests: number, limit: number }
  | { prodserver: 1, type: 'metrics', id: number, metrics: MetricsJSON }
  | { prodserver: 1, type: 'drained' }
  | { prodserver: 1, type: 'handoff' }
  | { prodserver: 1, type: 'listeners-closed' }
  | { prodserver: 1, type: 'stop-accepting' }

/**
 * drain: `unreadyMs` = readiness fails this long before the drain (shutdown only, not rotations:
 * while one worker is replaced the others keep the instance ready). `handoff`: other workers keep
 * serving (reload, recycle, scale-down), so idle keep-alive connections are handed back to the
 * primary with a `handoff` message carrying the socket's handle (cluster/handoff.ts), not closed.
 * metrics: one scrape of the metrics port (prom-client's own `prom-client:getMetricsReq` messages
 * carry no `prodserver` tag, so an app using AggregatorRegistry itself is left alone).
 * farewell: the answer to a worker's `drained`; the worker exits once it has it (worker.ts).
 * listeners-closed: on a stop, each worker reports its listeners closed; once all have, the primary
 * answers every one of them (cluster/stop-barrier.ts) and they start closing connections.
 * accepting-stopped: the answer to a stopping worker's `stop-accepting`, before it closes its own
 * listener: the primary has closed node:cluster's shared listeners and handed out every connection
 * it had accepted (cluster/shared-listeners.ts).
 */
export type PrimaryMessage =
  | { prodserver: 1, type: 'drain', unreadyMs?: number, handoff?: boolean }
  | { prodserver: 1, type: 'metrics', id: number }
  | { prodserver: 1, type: 'farewell' }
  | { prodserver: 1, type: 'listeners-closed' }
  | { prodserver: 1, type: 'accepting-stopped' }

export function isProtocolMessage<M extends { type: string }> (m: unknown): m is M {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>)[TAG] === 1 &&
    typeof (m as Record<string, unknown>).type === 'string'
}

/** True in a process that our primary forked (a user's own cluster worker is not ours). */
export function isOurWorker (env: NodeJS.ProcessEnv = process.env): boolean {
  return cluster.isWorker && env[WORKER_ENV.plan] !== undefined
}

export function readWorkerPlan (env: NodeJS.ProcessEnv = process.env): Plan {
  return JSON.parse(env[WORKER_ENV.plan] as string) as Plan
}

/** Heartbeat period: several beats per timeout so one late beat is not a kill (Gunicorn uses timeout/2). */
export function heartbeatIntervalMs (workerTimeoutMs: number): number {
  if (workerTimeoutMs <= 0) return 1000
  return Math.max(50, Math.min(1000, Math.floor(workerTimeoutMs / 4)))
}

/** Exit code of a worker that failed before it was ready (Gunicorn's WORKER_BOOT_ERROR). */
export const WORKER_BOOT_ERROR = 3
