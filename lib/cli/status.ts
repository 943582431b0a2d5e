/**
 * `prodserver status` as text: the server, its plan, one line per worker, restarts, and the
 * memory advice. Pure: a StatusReport in, text out (`--json` prints the report itself).
 */
import type { StatusReport, WorkerStatus } from '../control/protocol'

export function statusText (r: StatusReport): string {
  const s = r.server
  const lines: string[] = []
  lines.push(`prodserver ${s.version} (Node ${s.node}), ${s.mode} mode, pid ${s.pid}, ${s.phase}, up ${duration(s.uptimeMs)}`)
  lines.push(`  listening: ${s.addresses.length > 0 ? s.addresses.join(', ') : '(not yet)'}`)
  lines.push(`  app:       ${s.app ?? '(given in code)'}  (cwd ${s.cwd})`)

  const p = r.plan
  const res = `${p.resources.cpus} CPUs, ${p.resources.memoryMb} MB (${p.resources.source})`
  lines.push('', 'Plan')
  lines.push(s.mode === 'cluster'
    ? `  ${p.workers} worker${p.workers === 1 ? '' : 's'} × ${p.threads} threads, V8 heap cap ${p.heapMb} MB each, worker-memory-mb ${p.workerMemoryMb}; ${res}`
    : `  1 process, ${p.threads} threads, worker-memory-mb ${p.workerMemoryMb}; ${res}`)
  const b = r.memoryBudget
  lines.push(b.rssOverMb === null
    ? `  memory budget: observed only (worker-memory-threshold ${b.threshold}, worker-memory-interval ${b.intervalMs} ms)`
    : `  memory budget: over ${b.rssOverMb} MB RSS or ${b.heapOverFraction} × heap cap for ${b.samples} samples (every ${b.intervalMs} ms) → ${s.mode === 'cluster' ? 'replaced, replacement first' : 'warning'}`)

  lines.push('', s.mode === 'cluster' ? 'Workers' : 'Process')
  const rows = [['PID', 'STATE', 'STARTED FOR', 'UPTIME', 'RSS MB', 'HEAP MB', 'REQUESTS', 'RESTARTS'], ...r.workers.map(workerRow)]
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  for (const row of rows) lines.push('  ' + row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())

  if (s.mode === 'cluster') {
    lines.push('', `Restarts since start: ${Object.entries(r.restarts).map(([reason, n]) => `${reason} ${n}`).join(', ')}`)
  }
  lines.push('', 'Memory advice')
  lines.push(`  ${r.advice?.text ?? 'no memory samples yet (worker-memory-interval 0 turns sampling off)'}`)
  return lines.join('\n') + '\n'
}

function workerRow (w: WorkerStatus): string[] {
  const heap = w.heapUsedMb === null ? '—' : `${Math.round(w.heapUsedMb)}/${w.heapLimitMb === null ? '?' : Math.round(w.heapLimitMb)}`
  const restarts = Object.entries(w.restarts).filter(([, n]) => (n ?? 0) > 0).map(([reason, n]) => `${reason} ${String(n)}`).join(', ')
  return [
    String(w.pid),
    w.state + (w.overBudgetSamples > 0 ? ` (over budget ×${w.overBudgetSamples})` : ''),
    w.startedFor,
    duration(w.uptimeMs),
    w.rssMb === null ? '—' : String(Math.round(w.rssMb)),
    heap,
    String(w.requests),
    restarts === '' ? '—' : restarts
  ]
}

/** 3d 4h, 2h 3m, 5m 12s, 42s. */
export function duration (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  if (m > 0) return `${m}m ${s % 60}s`
  return `${s}s`
}
