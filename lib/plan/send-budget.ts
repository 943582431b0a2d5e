/**
 * Per-process budget for response bytes waiting in user space for slow clients, pure.
 *
 * Why: a response handed to the socket whole (res.end(body), a rendered page, JSON) stays in the
 * process until the client reads it; a slow-read attack (slowhttptest -X) on a 1 MB route grew one
 * process to 3.1 GB that way (issue 9), and neither the V8 heap cap nor anything in node:http
 * bounds it. lib/server/send-budget.ts closes the slowest readers beyond this budget.
 *
 * Rule: SEND_BUDGET_SHARE of the process's memory budget — worker-memory-mb, or the fair share
 * memory / workers when fewer fit (the heap cap's budget, heap.ts) — and at least
 * MIN_SEND_BUDGET_MB. The heap cap takes 75% of that budget; the remaining quarter also holds
 * Node's own code and native memory (~50 MB measured: RSS minus heap at rest), so buffered sends
 * get half of it: 25 MB for a 200 MB worker. Measured under slowhttptest -X on a 1 MB route, a
 * worker then peaks at ~150-180 MB: below 0.85 × 200, the memory threshold when this was
 * measured, but over the 0.7 × 200 = 140 MB default now, so such an attack costs (lossless) memory
 * replacements; with a quarter (50 MB) it reached ~195 MB.
 */
import { processBudget, type HeapInput } from './heap'

export const SEND_BUDGET_SHARE = 0.125
export const MIN_SEND_BUDGET_MB = 16

export interface SendBudgetDecision {
  bytes: number
  step: string
}

export function decideSendBudget (input: HeapInput): SendBudgetDecision {
  const { budgetMb, text } = processBudget(input)
  const scaled = Math.floor(budgetMb * SEND_BUDGET_SHARE)
  const mb = Math.max(MIN_SEND_BUDGET_MB, scaled)
  const floorText = scaled < MIN_SEND_BUDGET_MB ? ` → ${MIN_SEND_BUDGET_MB} MB (minimum)` : ''
  return {
    bytes: mb * 1024 * 1024,
    step: `Send buffers per process: ${text} * ${SEND_BUDGET_SHARE} = ${scaled} MB${floorText} (response bytes waiting for slow clients; beyond it the slowest readers are closed)`
  }
}
