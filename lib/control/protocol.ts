/**
 * What `prodserver status|reload|stop` and a running server say to each other over the control
 * socket: one JSON line each way. The request carries the token from the server's 0600 info
 * file, so only a process that can read that file (the server's user, or root) is obeyed.
 */
import type { RestartReason } from '../ops/supervisor-metrics'
import type { BudgetAdvice } from '../plan/memory-advice'

export type ControlCommand = 'status' | 'reload' | 'stop'
export const CONTROL_COMMANDS: readonly ControlCommand[] = ['status', 'reload', 'stop']

export interface ControlRequest {
  token: string
  command: ControlCommand
}

/** The info file next to the socket (`<pid>.json`, 0600): how a client finds and tells servers apart. */
export interface ServerInfo {
  pid: number
  socket: string
  token: string
  mode: 'single' | 'cluster'
  /** Working directory of the server, to pick the server started from the client's directory. */
  cwd: string
  /** The app module path, when the app was given as a path. */
  app?: string
  /** Where it listens (`http://host:port` or a unix socket path). */
  addresses: string[]
  startedAt: string
  version: string
}

export type RestartCounts = Record<RestartReason, number>

export interface WorkerStatus {
  pid: number
  /** cluster: booting, ready, draining; single: serving, draining. */
  state: string
  /** Why this process was started: boot, respawn, reload, recycle, memory, scale-up (single: boot). */
  startedFor: string
  uptimeMs: number
  rssMb: number | null
  heapUsedMb: number | null
  heapLimitMb: number | null
  /** Requests served by this process (as of its latest heartbeat in cluster mode). */
  requests: number
  /** The replacements behind this worker's place in the cluster, by reason (its predecessors'). */
  restarts: Partial<RestartCounts>
  /** Consecutive memory samples over the budget right now. */
  overBudgetSamples: number
}

export interface StatusReport {
  server: {
    pid: number
    mode: 'single' | 'cluster'
    phase: string
    version: string
    node: string
    cwd: string
    app?: string
    addresses: string[]
    startedAt: string
    uptimeMs: number
  }
  plan: {
    workers: number
    threads: number
    heapMb: number
    workerMemoryMb: number
    resources: { cpus: number, memoryMb: number, source: string }
    formula: string[]
  }
  memoryBudget: {
    workerMemoryMb: number
    threshold: number
    samples: number
    intervalMs: number
    /** RSS above this is over budget (null when observing only). */
    rssOverMb: number | null
    /** Fraction of each worker's heap cap above which it is over budget (null when observing only). */
    heapOverFraction: number | null
  }
  workers: WorkerStatus[]
  /** Workers replaced since start, by reason (all zero in single mode). */
  restarts: RestartCounts
  /** The seed's monitor-then-adjust step, computed; null before the first memory sample. */
  advice: BudgetAdvice | null
}

export type ReloadResult = { ok: true, workers: number[] } | { ok: false, error: string }

export type ControlReply =
  | { ok: true, status: StatusReport }
  | { ok: true, reload: ReloadResult }
  | { ok: true, stopping: { pid: number, deadlineMs: number } }
  | { ok: false, error: string }

/** Longest request line accepted (a token and a command fit in far less). */
export const MAX_REQUEST_BYTES = 4096
