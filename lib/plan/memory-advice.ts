/**
 * The seed's "monitor RAM usage, adjust WORKER_MEMORY_MB" step, computed: from what the workers
 * really used (p95 of every memory sample since start), the budget that fits them and the worker
 * count the formula would give this machine with it. Pure.
 */
import { HEAP_SHARE } from './heap'
import { decideWorkers } from './workers'

/** Whole-MB buckets: exact to 1 MB, bounded by the largest value seen, however long the server runs. */
export class MbHistogram {
  private readonly counts = new Map<number, number>()
  private total = 0

  add (valueMb: number): void {
    const bucket = Math.max(0, Math.ceil(valueMb))
    this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + 1)
    this.total++
  }

  get count (): number { return this.total }

  /** The smallest whole MB at or under which `q` (0..1) of the samples lie; undefined when empty. */
  quantile (q: number): number | undefined {
    if (this.total === 0) return undefined
    const rank = Math.max(1, Math.ceil(q * this.total))
    let seen = 0
    for (const bucket of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(bucket) as number
      if (seen >= rank) return bucket
    }
    return undefined
  }
}

export interface AdviceInput {
  samples: number
  p95RssMb?: number
  p95HeapMb?: number
  /** The memory-threshold knob (0 = observe only, taken as 1 here). */
  threshold: number
  workerMemoryMb: number
  cpus: number
  memoryMb: number
  /** An explicit threads knob divides the worker count, as in the plan. */
  threads?: number
}

export interface BudgetAdvice {
  samples: number
  p95RssMb?: number
  p95HeapMb?: number
  /** The budget to set: the p95 worker then sits at ADVICE_HEADROOM of the replacement threshold. */
  workerMemoryMb: number
  /** Workers this machine would run with it (the seed's formula). */
  workers: number
  limitedBy: 'cpu' | 'ram' | 'both'
  text: string
}

/** The p95 worker should use at most this share of the replacement threshold: room for peaks. */
export const ADVICE_HEADROOM = 0.8
/** worker-memory-mb's minimum (knobs.ts). */
const MIN_BUDGET_MB = 32

export function adviseBudget (input: AdviceInput): BudgetAdvice | undefined {
  if (input.samples === 0 || (input.p95RssMb === undefined && input.p95HeapMb === undefined)) return undefined
  const share = (input.threshold > 0 ? input.threshold : 1) * ADVICE_HEADROOM
  const fromRss = (input.p95RssMb ?? 0) / share
  // The heap cap is HEAP_SHARE of the budget (plan/heap.ts), so a heap of H needs H / HEAP_SHARE.
  const fromHeap = (input.p95HeapMb ?? 0) / share / HEAP_SHARE
  const workerMemoryMb = Math.max(MIN_BUDGET_MB, Math.ceil(Math.max(fromRss, fromHeap) / 10) * 10)
  const decision = decideWorkers({ cpus: input.cpus, memoryMb: input.memoryMb, workerMemoryMb, cluster: true, threads: input.threads })
  const { cpuBased, ramBased } = decision.formula
  const limitedBy = cpuBased < ramBased ? 'cpu' : ramBased < cpuBased ? 'ram' : 'both'
  const used = [
    input.p95RssMb !== undefined ? `p95 RSS ${input.p95RssMb} MB` : undefined,
    input.p95HeapMb !== undefined ? `p95 heap ${input.p95HeapMb} MB` : undefined
  ].filter(Boolean).join(', ')
  const limit = limitedBy === 'cpu' ? 'CPU-limited' : limitedBy === 'ram' ? 'RAM-limited' : 'CPU and RAM agree'
  const text = `workers use ${used} (${input.samples} samples); with WORKER_MEMORY_MB=${workerMemoryMb} this machine would run ${decision.workers} worker${decision.workers === 1 ? '' : 's'} (${limit}; now WORKER_MEMORY_MB=${input.workerMemoryMb})`
  return { samples: input.samples, p95RssMb: input.p95RssMb, p95HeapMb: input.p95HeapMb, workerMemoryMb, workers: decision.workers, limitedBy, text }
}
