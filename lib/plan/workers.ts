/**
 * The worker formula of the seed (shared/seeds/003_…, NOW LMS's RAM-aware sizing), pure:
 *
 *   cpu_based = 2 * cpus + 1
 *   ram_based = floor(memory_mb / worker_memory_mb)
 *   optimal   = max(1, min(cpu_based, ram_based))
 *   with threads: workers = max(1, floor(optimal / threads))
 *
 * Cluster mode runs `workers` processes; single-process mode runs one, and the optimal value
 * becomes its thread count (Waitress), i.e. UV_THREADPOOL_SIZE, unless threads is set. An explicit
 * worker count always wins.
 *
 * Fractional CPUs (a cgroup quota of 1.5): the formula counts whole CPUs, max(1, floor(cpus)).
 * Why floor: an event loop needs a whole CPU to run at full speed; planning one on CPU time the
 * quota does not grant turns into CFS throttling, i.e. latency spikes. It also matches what
 * os.availableParallelism() reports under a quota on Node ≥ 22 (libuv ≥ 1.49: floor(quota/period),
 * at least 1), so the count does not change when the app moves to a newer Node. Why at least 1:
 * a 0.5-CPU container still runs the app; 2*0.5+1 = 2 processes would only fight over half a CPU.
 */
import type { WorkerFormula } from './types'

/** libuv caps UV_THREADPOOL_SIZE at 1024 (larger values are silently clamped). */
export const MAX_THREADS = 1024
/** Node's libuv pool when UV_THREADPOOL_SIZE is not set. */
export const NODE_DEFAULT_THREADS = 4

export interface WorkerInput {
  cpus: number
  memoryMb: number
  workerMemoryMb: number
  /** The `cluster` knob. */
  cluster: boolean
  /** An explicit worker count (flag, option or env), if any. */
  workers?: number
  /** An explicit thread count (the `threads` knob), if any. */
  threads?: number
  /** UV_THREADPOOL_SIZE already in the environment: libuv's own variable, honoured when threads is not set. */
  envThreadpoolSize?: number
}

export interface WorkerDecision {
  mode: 'single' | 'cluster'
  workers: number
  threads: number
  formula: WorkerFormula
  /** Why the worker count is what it is. */
  workersBy: 'explicit' | 'formula' | 'single-process'
  /** Why the thread count is what it is. */
  threadsBy: 'explicit' | 'env' | 'formula' | 'node-default'
}

/** The CPU count the formula uses: whole CPUs, at least 1 (see the module comment). */
export function formulaCpus (cpus: number): number {
  return Math.max(1, Math.floor(cpus))
}

export function computeFormula (cpus: number, memoryMb: number, workerMemoryMb: number): WorkerFormula {
  const steps: string[] = []
  const whole = formulaCpus(cpus)
  if (whole !== cpus) steps.push(`CPUs: ${cpus} → ${whole} (a fractional quota counts whole CPUs, at least 1)`)
  const cpuBased = whole * 2 + 1
  const ramBased = Math.floor(memoryMb / workerMemoryMb)
  const smallest = Math.min(cpuBased, ramBased)
  const optimal = Math.max(1, smallest)
  steps.push(`CPU-based: (${whole} * 2) + 1 = ${cpuBased}`)
  steps.push(`RAM-based: ${memoryMb} / ${workerMemoryMb} = ${ramBased}`)
  const limitedBy = cpuBased < ramBased ? ' (CPU-limited)' : ramBased < cpuBased ? ' (RAM-limited)' : ''
  steps.push(smallest < 1
    ? `Optimal: max(1, min(${cpuBased}, ${ramBased})) = ${optimal} (minimum enforced; less memory than one worker's budget)`
    : `Optimal: min(${cpuBased}, ${ramBased}) = ${optimal}${limitedBy}`)
  return { cpuBased, ramBased, optimal, steps }
}

export function decideWorkers (input: WorkerInput): WorkerDecision {
  const formula = computeFormula(input.cpus, input.memoryMb, input.workerMemoryMb)
  const steps = formula.steps
  const { optimal } = formula
  const explicitWorkers = input.workers
  const mode = input.cluster || (explicitWorkers !== undefined && explicitWorkers > 1) ? 'cluster' : 'single'

  if (mode === 'single') {
    if (input.threads !== undefined) {
      steps.push(`Single process: ${input.threads} threads (explicitly set; the formula's ${optimal} is not used)`)
      return { mode, workers: 1, threads: input.threads, formula, workersBy: 'single-process', threadsBy: 'explicit' }
    }
    if (input.envThreadpoolSize !== undefined) {
      steps.push(`Single process: ${input.envThreadpoolSize} threads (UV_THREADPOOL_SIZE from the environment; the formula's ${optimal} is not used)`)
      return { mode, workers: 1, threads: input.envThreadpoolSize, formula, workersBy: 'single-process', threadsBy: 'env' }
    }
    const threads = Math.min(optimal, MAX_THREADS)
    steps.push(threads < optimal
      ? `Single process: min(${optimal}, ${MAX_THREADS}) = ${threads} threads (libuv's maximum UV_THREADPOOL_SIZE)`
      : `Single process: ${threads} threads (UV_THREADPOOL_SIZE = optimal)`)
    return { mode, workers: 1, threads, formula, workersBy: 'single-process', threadsBy: 'formula' }
  }

  let threads: number
  let threadsBy: WorkerDecision['threadsBy']
  if (input.threads !== undefined) {
    threads = input.threads
    threadsBy = 'explicit'
  } else if (input.envThreadpoolSize !== undefined) {
    threads = input.envThreadpoolSize
    threadsBy = 'env'
  } else {
    threads = NODE_DEFAULT_THREADS
    threadsBy = 'node-default'
  }
  const threadsText = threadsBy === 'explicit'
    ? `${threads} threads`
    : threadsBy === 'env' ? `${threads} threads (UV_THREADPOOL_SIZE from the environment)` : `Node's default libuv pool (${threads} threads)`

  if (explicitWorkers !== undefined) {
    steps.push(`Workers: ${explicitWorkers} (explicitly set; the formula's ${optimal} is not used), ${threadsText} each`)
    return { mode, workers: explicitWorkers, threads, formula, workersBy: 'explicit', threadsBy }
  }
  // Only the threads knob divides the worker count (the seed's "threads save RAM"); a
  // UV_THREADPOOL_SIZE inherited from the environment only sizes the pool.
  if (input.threads !== undefined && input.threads > 1) {
    const divided = Math.floor(optimal / input.threads)
    const workers = Math.max(1, divided)
    steps.push(`With threads: ${optimal} / ${input.threads} = ${workers} worker${workers === 1 ? '' : 's'} with ${input.threads} threads${divided < 1 ? ' (minimum enforced)' : ''}`)
    return { mode, workers, threads, formula, workersBy: 'formula', threadsBy }
  }
  steps.push(`Cluster: ${optimal} worker${optimal === 1 ? '' : 's'}, ${threadsText} each`)
  return { mode, workers: optimal, threads, formula, workersBy: 'formula', threadsBy }
}
