/**
 * The resolved plan: everything the launcher decided, with where each value came from.
 * Produced by planServer() (pure), consumed by lib/server (one tuned process) and lib/cluster
 * (the supervisor). It is plain JSON so the primary can hand it to workers through the env.
 */
import type { ListenAddress } from '../config/knobs'

export interface Resources {
  cpus: number
  memoryMb: number
  /** One line: where the numbers came from, e.g. "cgroup v2 (cpu.max 150000/100000, memory.max)" or "host". */
  source: string
  /** Per-figure detail for `prodserver config`. */
  detail?: { cpus: string, memory: string }
}

export interface WorkerFormula {
  cpuBased: number // 2*cpus + 1
  ramBased: number // floor(memoryMb / workerMemoryMb)
  optimal: number // max(1, min(cpuBased, ramBased))
  /** Human-readable steps, as in the seed's worked examples. */
  steps: string[]
}

export interface ServerPlan {
  channelTimeoutMs: number
  cleanupIntervalMs: number
  connectionLimit: number
  keepAliveTimeoutMs: number
  headersTimeoutMs: number
  requestTimeoutMs: number
  recvBytes?: number
  sendBytes?: number
  urlScheme: 'http' | 'https'
  trustedProxy?: string[]
  ident?: string
  exposeTracebacks: boolean
  maxRequestBodySize?: number
  maxRequestHeaderSize?: number
  /** Response bytes this process may hold for slow clients before the slowest are closed (plan/send-budget.ts). */
  sendBudgetBytes: number
}

export type ListenPlan =
  | { kind: 'tcp', addresses: ListenAddress[], backlog: number }
  | { kind: 'unix', path: string, perms: number, backlog: number }

export interface SupervisorPlan {
  workerTimeoutMs: number
  gracefulTimeoutMs: number
  maxRequests: number
  maxRequestsJitter: number
}

/** The memory budget, enforced (cluster/memory-budget.ts). */
export interface MemoryPlan {
  /** worker-memory-mb: the budget of one worker (of the single process in single mode). */
  budgetMb: number
  /** Fraction of the budget (RSS) and of the heap cap (heap used) that is "over"; 0 = observe only. */
  threshold: number
  /** Consecutive samples over the threshold before a worker is replaced. */
  samples: number
  /** Sampling period; 0 = no sampling at all. */
  intervalMs: number
}

/** Health, readiness and metrics (all off unless their knob is set). */
export interface OpsPlan {
  /** Liveness path, answered before the app. */
  healthPath?: string
  /** Readiness path: 503 while draining or when the session store check fails. */
  readyPath?: string
  /** On shutdown, readiness fails this long before connections are drained. */
  drainDelayMs: number
  /** Prometheus port (served by the primary in cluster mode, by the process itself in single mode). */
  metricsPort?: number
  metricsHost: string
  /** control-dir: where the control socket goes (undefined: the per-user default, control/dir.ts). */
  controlDir?: string
  /** pid-file: where the server writes its pid (control/pid-file.ts). */
  pidFile?: string
}

export interface SessionPlan {
  /** What SESSION_STORE asks for. */
  requested: 'auto' | 'redis' | 'file' | 'memory'
  /** What would be picked if the app registers the plugin (before Redis is probed). */
  expected: 'redis' | 'file' | 'memory'
  reason: string
  /** auto picked Redis: the plugin falls back to the file store if Redis is unreachable at boot. */
  fallbackToFile?: boolean
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** log-level and pretty-logs: applied in every process (single, primary, each worker). */
export interface LogPlan {
  /** Unset: the launcher logs at info and the app's logger is as the app configured it. */
  level?: LogLevel
  /** Unset: pretty on a terminal when pino-pretty is installed (decided in each process). */
  pretty?: boolean
}

/** How the app's processes are started: node preloads (--import/--require) and --watch. */
export interface LaunchPlan {
  imports: string[]
  requires: string[]
  watch: boolean
}

export interface Plan {
  mode: 'single' | 'cluster'
  workers: number
  /** UV_THREADPOOL_SIZE of every process. */
  threads: number
  resources: Resources
  formula: WorkerFormula
  /**
   * --max-old-space-size per worker, in MB, so N workers stay inside the memory they were sized
   * for; 0 in single mode, which applies no cap (Node's default, or the user's own flag).
   */
  heapMb: number
  server: ServerPlan
  listen: ListenPlan
  supervisor: SupervisorPlan
  sessions: SessionPlan
  ops: OpsPlan
  memory: MemoryPlan
  logs: LogPlan
  launch: LaunchPlan
  /** knob name (or derived value) → where it came from: flag, env name, option, default, formula, detected. */
  sources: Record<string, string>
  /** Waitress knobs that were set but mean nothing on Node. */
  notApplicable: Record<string, string>
  warnings: string[]
}
