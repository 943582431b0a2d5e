/**
 * The memory budget, enforced: pure decisions over memory samples (memory-watch.ts takes them).
 *
 * The seed's method is "monitor RAM usage, adjust WORKER_MEMORY_MB, reduce workers when
 * OOM-killed". The budget sizes the cluster and caps each V8 heap (plan/heap.ts); here it is also
 * watched: a worker whose RSS stays above `threshold × worker-memory-mb`, or whose V8 heap stays
 * above `threshold × its heap cap`, for `samples` samples in a row is replaced the way a reload
 * replaces one — long before V8 aborts it at the cap with requests in flight. PM2's
 * max_memory_restart polls every 30 s and kills in-flight requests (pm2#5191, pm2#5562); Granian's
 * --workers-max-rss restarts without bringing the replacement up first.
 *
 * Both measures, because either can run out first: a heap leak reaches the heap threshold while
 * RSS is still far from the budget (the heap is 0.75 of it), and Buffers, native memory or the
 * code of a big app grow RSS outside the heap.
 */
import type { MemoryPlan } from '../plan/types'

export type { MemoryPlan }

export interface MemorySample {
  rssMb?: number
  heapUsedMb?: number
  heapLimitMb?: number
}

export interface BudgetState {
  /** Consecutive samples over the threshold. */
  over: number
  /**
   * A sample under the threshold was seen since the process started. A process that was never
   * under it is as big as the app is: its replacement would start over budget too, so replacing
   * it would only loop.
   */
  seenUnder: boolean
  /** This over-budget episode was already acted on (one replacement request or warning per episode). */
  acted: boolean
}

export type Verdict =
  | { action: 'none' }
  /** Over budget for `samples` samples in a row after having been under: replace it gracefully. */
  | { action: 'replace', reason: string }
  /** Over budget since it started: the budget is too small for this app; say so, do not loop. */
  | { action: 'too-small', reason: string }

export const FRESH_STATE: BudgetState = { over: 0, seenUnder: false, acted: false }

export function rssThresholdMb (plan: MemoryPlan): number {
  return plan.threshold * plan.budgetMb
}

export function heapThresholdMb (plan: MemoryPlan, heapLimitMb: number): number {
  return plan.threshold * heapLimitMb
}

/** Which measure is over the threshold, described; undefined when the sample is within budget. */
export function overBudget (sample: MemorySample, plan: MemoryPlan): string | undefined {
  if (plan.threshold <= 0) return undefined
  const heapLimit = sample.heapLimitMb
  if (sample.heapUsedMb !== undefined && heapLimit !== undefined && sample.heapUsedMb > heapThresholdMb(plan, heapLimit)) {
    return `heap ${mb(sample.heapUsedMb)} MB > ${mb(heapThresholdMb(plan, heapLimit))} MB (${plan.threshold} × heap cap ${mb(heapLimit)} MB)`
  }
  if (sample.rssMb !== undefined && sample.rssMb > rssThresholdMb(plan)) {
    return `RSS ${mb(sample.rssMb)} MB > ${mb(rssThresholdMb(plan))} MB (${plan.threshold} × worker-memory-mb ${plan.budgetMb})`
  }
  return undefined
}

/** One sample of one process: the next state and what to do. */
export function judgeSample (state: BudgetState, sample: MemorySample, plan: MemoryPlan): { state: BudgetState, verdict: Verdict } {
  const over = overBudget(sample, plan)
  if (over === undefined) {
    return { state: { over: 0, seenUnder: sample.rssMb !== undefined || sample.heapUsedMb !== undefined || state.seenUnder, acted: false }, verdict: { action: 'none' } }
  }
  const next: BudgetState = { ...state, over: state.over + 1 }
  if (next.over < plan.samples || state.acted) return { state: next, verdict: { action: 'none' } }
  next.acted = true
  const reason = `${over} for ${next.over} sample${next.over === 1 ? '' : 's'} in a row`
  return { state: next, verdict: state.seenUnder ? { action: 'replace', reason } : { action: 'too-small', reason } }
}

export interface ExitFacts {
  signal: NodeJS.Signals | null
  /** Killed by the primary itself (worker-timeout, drain deadline): not a memory death. */
  killedByUs: boolean
  /** The last heap sample the worker sent, if any. */
  heap?: { usedMb: number, limitMb: number }
  /** The last RSS sample, if any. */
  rssMb?: number
  budgetMb: number
}

/** How close to its cap the last heap sample must be for a SIGABRT to be called out of memory. */
const NEAR_HEAP_LIMIT = 0.5

/**
 * Why a worker died, as far as memory tells: V8 aborts (SIGABRT, "FATAL ERROR: Reached heap
 * limit") when the old space reaches its cap, and the kernel's or the cgroup's OOM killer sends
 * SIGKILL. Sampling cannot see between samples, so a SIGABRT is called out of memory when the last
 * heap sample was already at least half the cap; otherwise the text says what is known.
 */
export function exitCause (facts: ExitFacts): { memory: boolean, text: string } | undefined {
  if (facts.signal === 'SIGABRT') {
    const heap = facts.heap
    if (heap !== undefined && heap.usedMb >= NEAR_HEAP_LIMIT * heap.limitMb) {
      return { memory: true, text: `out of memory (heap limit ${mb(heap.limitMb)} MB; last sample ${mb(heap.usedMb)} MB)` }
    }
    const last = heap !== undefined ? `the last heap sample was ${mb(heap.usedMb)} of ${mb(heap.limitMb)} MB` : 'no heap sample yet'
    return { memory: false, text: `aborted (SIGABRT): V8 aborts like this at its heap limit; ${last}` }
  }
  if (facts.signal === 'SIGKILL' && !facts.killedByUs) {
    const last = facts.rssMb !== undefined ? `; last RSS ${mb(facts.rssMb)} MB of a ${facts.budgetMb} MB budget` : ''
    return { memory: false, text: `killed by SIGKILL: perhaps out of memory (the kernel's or the cgroup's OOM killer)${last}` }
  }
  return undefined
}

/** Whole MB for messages. */
export function mb (value: number): number {
  return Math.round(value)
}
