/**
 * `prodserver status`'s document, assembled from what the running server knows: its plan, its
 * processes (with their latest memory samples) and the restarts so far, plus the budget advice.
 * Pure: the roles (primary, single) hand in plain figures.
 */
import type { Plan } from '../plan/types'
import { adviseBudget } from '../plan/memory-advice'
import type { MemoryReading, MemorySummary } from '../cluster/memory-watch'
import type { HeapUse } from '../system/process-memory'
import { RESTART_REASONS } from '../ops/supervisor-metrics'
import type { RestartCounts, ServerInfo, StatusReport, WorkerStatus } from './protocol'

/** What a role knows about one of its serving processes. */
export interface ProcessFacts {
  pid: number
  state: string
  startedFor: string
  startedAt: number
  requests: number
  restarts: Partial<RestartCounts>
  /** Heap figures as last reported (heartbeat), when no memory sample has them. */
  heap?: HeapUse
  /** RSS read now (status is rare; /proc is cheap). */
  rssMb?: number
  reading?: MemoryReading
}

export interface StatusInput {
  info: Omit<ServerInfo, 'socket' | 'token'>
  phase: string
  plan: Plan
  processes: ProcessFacts[]
  restarts: RestartCounts
  memory: MemorySummary
  now?: number
}

export function zeroRestarts (): RestartCounts {
  return Object.fromEntries(RESTART_REASONS.map((r) => [r, 0])) as RestartCounts
}

/** Figures derived by the plan rather than given: only the threads knob divides the worker count. */
const DERIVED_THREADS = /^(formula|env UV_THREADPOOL_SIZE|Node's default)/

export function buildStatusReport (input: StatusInput): StatusReport {
  const { info, plan } = input
  const now = input.now ?? Date.now()
  const m = plan.memory
  const observing = m.threshold <= 0 || m.intervalMs <= 0
  const advice = adviseBudget({
    ...input.memory,
    threshold: m.threshold,
    workerMemoryMb: m.budgetMb,
    cpus: plan.resources.cpus,
    memoryMb: plan.resources.memoryMb,
    threads: DERIVED_THREADS.test(plan.sources.threads ?? '') ? undefined : plan.threads
  })
  return {
    server: {
      pid: info.pid,
      mode: info.mode,
      phase: input.phase,
      version: info.version,
      node: process.version,
      cwd: info.cwd,
      app: info.app,
      addresses: info.addresses,
      startedAt: info.startedAt,
      uptimeMs: now - Date.parse(info.startedAt)
    },
    plan: {
      workers: plan.workers,
      threads: plan.threads,
      heapMb: plan.heapMb,
      workerMemoryMb: m.budgetMb,
      resources: { cpus: plan.resources.cpus, memoryMb: plan.resources.memoryMb, source: plan.resources.source },
      formula: plan.formula.steps
    },
    memoryBudget: {
      workerMemoryMb: m.budgetMb,
      threshold: m.threshold,
      samples: m.samples,
      intervalMs: m.intervalMs,
      rssOverMb: observing ? null : round(m.threshold * m.budgetMb),
      heapOverFraction: observing ? null : m.threshold
    },
    workers: input.processes.map((p) => workerStatus(p, now)),
    restarts: input.restarts,
    advice: advice ?? null
  }
}

function workerStatus (p: ProcessFacts, now: number): WorkerStatus {
  const heapUsed = p.heap?.usedMb ?? p.reading?.heapUsedMb
  const heapLimit = p.heap?.limitMb ?? p.reading?.heapLimitMb
  const rss = p.rssMb ?? p.reading?.rssMb
  return {
    pid: p.pid,
    state: p.state,
    startedFor: p.startedFor,
    uptimeMs: now - p.startedAt,
    rssMb: rss === undefined ? null : round(rss),
    heapUsedMb: heapUsed === undefined ? null : round(heapUsed),
    heapLimitMb: heapLimit === undefined ? null : round(heapLimit),
    requests: p.requests,
    restarts: p.restarts,
    overBudgetSamples: p.reading?.overSamples ?? 0
  }
}

function round (value: number): number {
  return Math.round(value * 10) / 10
}
