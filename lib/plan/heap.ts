/**
 * Per-worker V8 heap cap (--max-old-space-size), pure.
 *
 * Why: V8 sizes each process's default heap from the whole cgroup limit (nodejs/node#27508,
 * #47259), so N workers can jointly grow past the container and get OOM-killed in a way that looks
 * like random crashes (research pitfall 4). The formula sized workers at worker-memory-mb each, so
 * that is also each worker's ceiling — and when an explicit worker count packs more workers than
 * the memory holds, the fair share memory / workers is the ceiling instead.
 *
 * Rule: heapMb = max(64, floor(0.75 * min(worker-memory-mb, floor(memoryMb / workers)))).
 * 0.75: the old-space heap is not the whole process; code, stacks, buffers, new space and the
 * libuv pool live outside it (a 200 MB worker gets a 150 MB heap). 64: below that V8 spends its
 * time collecting garbage and a Fastify app barely boots; a budget that small is a
 * misconfiguration the plan warns about rather than enforces.
 */
export const HEAP_SHARE = 0.75
export const MIN_HEAP_MB = 64

export interface HeapInput {
  workers: number
  memoryMb: number
  workerMemoryMb: number
}

export interface HeapDecision {
  heapMb: number
  step: string
  /** The budget per worker that the heap was derived from. */
  budgetMb: number
}

/** One process's memory budget: worker-memory-mb, or the fair share memory / workers when less; with how it reads in a step. */
export function processBudget ({ workers, memoryMb, workerMemoryMb }: HeapInput): { budgetMb: number, text: string } {
  const share = Math.floor(memoryMb / workers)
  if (share < workerMemoryMb) return { budgetMb: share, text: `min(${workerMemoryMb}, ${memoryMb} / ${workers} = ${share})` }
  return { budgetMb: workerMemoryMb, text: `${workerMemoryMb}` }
}

export function decideHeap (input: HeapInput): HeapDecision {
  const { budgetMb, text: budgetText } = processBudget(input)
  const scaled = Math.floor(budgetMb * HEAP_SHARE)
  const heapMb = Math.max(MIN_HEAP_MB, scaled)
  const floorText = scaled < MIN_HEAP_MB ? ` → ${MIN_HEAP_MB} (minimum)` : ''
  return { heapMb, budgetMb, step: `Heap per process: ${budgetText} * ${HEAP_SHARE} = ${scaled} MB${floorText} (--max-old-space-size)` }
}
