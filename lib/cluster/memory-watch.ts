/**
 * Samples the memory of the serving processes every worker-memory-interval and applies the
 * budget (memory-budget.ts decides). In the primary the processes are the ready workers: RSS read
 * from /proc by the primary, heap as sent with each worker's heartbeat. In single mode it is the
 * process itself. The samples also feed the p95 figures behind `prodserver status`'s advice.
 */
import { FRESH_STATE, judgeSample, type BudgetState, type MemoryPlan, type MemorySample, type Verdict } from './memory-budget'
import { MbHistogram } from '../plan/memory-advice'
import { ownHeap, rssMb, type HeapUse } from '../system/process-memory'
import type { LauncherLog } from './log'

export interface WatchedProcess {
  pid: number
  /** The latest heap figures of that process, if known. */
  heap?: HeapUse
}

export interface MemoryReading extends MemorySample {
  /** When the sample was taken (ms since the epoch). */
  at: number
  /** Consecutive samples over the threshold so far. */
  overSamples: number
}

export interface MemorySummary {
  samples: number
  p95RssMb?: number
  p95HeapMb?: number
}

export class MemoryWatch {
  private readonly states = new Map<number, BudgetState>()
  private readonly readings = new Map<number, MemoryReading>()
  private readonly rssSeen = new MbHistogram()
  private readonly heapSeen = new MbHistogram()
  private samples = 0
  private timer?: NodeJS.Timeout

  constructor (
    readonly plan: MemoryPlan,
    private readonly processes: () => WatchedProcess[],
    private readonly onVerdict: (pid: number, verdict: Exclude<Verdict, { action: 'none' }>, reading: MemoryReading) => void,
    private readonly readRss: (pid: number) => number | undefined = rssMb
  ) {}

  /** Samples now (the baseline: a process over budget from its start is not replaced), then every interval. */
  start (): void {
    if (this.plan.intervalMs <= 0 || this.timer !== undefined) return
    this.sampleAll()
    this.timer = setInterval(() => this.sampleAll(), this.plan.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  /** One round: every watched process once. */
  sampleAll (): void {
    for (const p of this.processes()) this.sample(p)
  }

  /**
   * One process, now. The primary also calls it when a worker becomes ready, so that its first
   * sample is its size after boot, before load makes it grow.
   */
  sample ({ pid, heap }: WatchedProcess): void {
    if (this.plan.intervalMs <= 0) return
    const sample: MemorySample = { rssMb: this.readRss(pid), heapUsedMb: heap?.usedMb, heapLimitMb: heap?.limitMb }
    if (sample.rssMb === undefined && sample.heapUsedMb === undefined) return
    this.samples++
    if (sample.rssMb !== undefined) this.rssSeen.add(sample.rssMb)
    if (sample.heapUsedMb !== undefined) this.heapSeen.add(sample.heapUsedMb)
    const { state, verdict } = judgeSample(this.states.get(pid) ?? FRESH_STATE, sample, this.plan)
    this.states.set(pid, state)
    const reading = { ...sample, at: Date.now(), overSamples: state.over }
    this.readings.set(pid, reading)
    if (verdict.action !== 'none') this.onVerdict(pid, verdict, reading)
  }

  /** The latest sample of one process. */
  reading (pid: number): MemoryReading | undefined {
    return this.readings.get(pid)
  }

  /** The process has exited. */
  forget (pid: number): void {
    this.states.delete(pid)
    this.readings.delete(pid)
  }

  /** p95 of every sample since start, for the budget advice. */
  summary (): MemorySummary {
    return { samples: this.samples, p95RssMb: this.rssSeen.quantile(0.95), p95HeapMb: this.heapSeen.quantile(0.95) }
  }
}

/**
 * Single mode: the process watches itself. It cannot be replaced without a gap (nothing would
 * accept connections between its exit and its restart), so over budget it only warns, once per
 * episode; cluster mode (`--cluster --workers 1` on a small machine) replaces gracefully.
 */
export function watchOwnMemory (plan: MemoryPlan, log: LauncherLog): MemoryWatch {
  const watch = new MemoryWatch(plan, () => [{ pid: process.pid, heap: ownHeap() }], (pid, verdict, reading) => {
    const figures = { rssMb: roundMb(reading.rssMb), heapUsedMb: roundMb(reading.heapUsedMb), heapLimitMb: roundMb(reading.heapLimitMb), budgetMb: plan.budgetMb, why: verdict.reason, reason: 'memory' }
    log.warn({ ...figures, action: 'none' }, verdict.action === 'too-small'
      ? 'worker-memory-mb is too small for this app: the process was over its memory budget since it started (raise worker-memory-mb)'
      : 'over the memory budget: a single process cannot be replaced without a gap, so it keeps running (cluster mode replaces workers gracefully)')
  })
  watch.start()
  return watch
}

export function roundMb (value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value)
}
