/**
 * `prodserver config`: the plan and *why* — the seed's "expected configuration" tables computed
 * for this machine. Pure renderers: plan + resolution in, text or JSON out.
 */
import { KNOBS, type KnobDefinition, type KnobGroup } from '../config/knobs'
import { formatKnobValue } from '../config/values'
import type { ResolvedKnobs } from '../config/resolve'
import type { Plan } from '../plan/types'
import { GROUP_TITLES } from './help'

/** What each knob shows: the value the plan settled on (workers, threads, …), formatted as typed. */
export function displayValues (plan: Plan, resolved: ResolvedKnobs): Record<string, string> {
  const out: Record<string, string> = {}
  const values = resolved.values as Record<string, unknown>
  for (const knob of KNOBS as readonly KnobDefinition[]) {
    out[knob.name] = formatKnobValue(knob, planValue(plan, knob.name) ?? values[knob.name])
  }
  return out
}

function planValue (plan: Plan, name: string): unknown {
  switch (name) {
    case 'cluster': return plan.mode === 'cluster'
    case 'workers': return plan.workers
    case 'threads': return plan.threads
    case 'cpus': return plan.resources.cpus
    case 'memory-mb': return plan.resources.memoryMb
    case 'keep-alive-timeout': return plan.server.keepAliveTimeoutMs
    case 'drain-delay': return plan.ops.drainDelayMs
    default: return undefined
  }
}

/** `--json`: the plan (plain JSON) plus every knob's display value; secrets never in clear. */
export function configJson (plan: Plan, resolved: ResolvedKnobs): string {
  return JSON.stringify({ ...plan, knobs: displayValues(plan, resolved) }, null, 2) + '\n'
}

export function configText (plan: Plan, resolved: ResolvedKnobs): string {
  const shown = displayValues(plan, resolved)
  const lines: string[] = []
  const { resources: res } = plan
  lines.push('Resources')
  lines.push(`  CPUs:    ${res.detail?.cpus ?? res.cpus}`)
  lines.push(`  Memory:  ${res.detail?.memory ?? `${res.memoryMb} MB`}`)
  lines.push(`  Source:  ${res.source}`)
  lines.push('', 'Worker sizing (cpu_based = 2*cpus+1, ram_based = memory / worker-memory-mb)')
  for (const step of plan.formula.steps) lines.push(`  ${step}`)
  const workers = plan.mode === 'cluster' ? `${plan.workers} worker${plan.workers === 1 ? '' : 's'}` : '1 process'
  const each = plan.mode === 'cluster' ? ' each' : ''
  const heap = plan.heapMb > 0 ? `V8 heap cap ${plan.heapMb} MB${each}` : "V8 heap: Node's default (no cap)"
  lines.push(`  Result:  ${plan.mode} mode, ${workers}, ${plan.threads} threads (UV_THREADPOOL_SIZE)${each}, ${heap}`)

  const groups: KnobGroup[] = ['app', 'process', 'listen', 'server', 'session']
  for (const group of groups) {
    const knobs = KNOBS.filter((k) => k.group === group) as readonly KnobDefinition[]
    const width = Math.max(...knobs.map((k) => k.name.length))
    const valueWidth = Math.min(28, Math.max(...knobs.map((k) => shown[k.name].length)))
    lines.push('', GROUP_TITLES[group])
    if (group === 'listen') lines.push(`  ${'→'.padEnd(width)}  ${describeListen(plan)}`)
    for (const knob of knobs) {
      lines.push(`  ${knob.name.padEnd(width)}  ${shown[knob.name].padEnd(valueWidth)}  ${plan.sources[knob.name] ?? 'default'}`)
    }
    if (group === 'session') lines.push(`  ${'→'.padEnd(width)}  ${plan.sessions.expected} store: ${plan.sessions.reason}`)
  }

  const na = Object.entries(plan.notApplicable)
  if (na.length > 0) {
    lines.push('', 'Not applicable on Node')
    for (const [name, why] of na) lines.push(`  ${name} = ${shown[name]} (${plan.sources[name]}): ${why}`)
  }
  if (plan.warnings.length > 0) {
    lines.push('', 'Warnings')
    for (const w of plan.warnings) lines.push(`  ${w}`)
  }
  return lines.join('\n') + '\n'
}

function describeListen (plan: Plan): string {
  const l = plan.listen
  if (l.kind === 'unix') return `unix socket ${l.path} (perms ${l.perms.toString(8)}), backlog ${l.backlog}`
  const list = l.addresses.map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)).join(', ')
  return `tcp ${list}, backlog ${l.backlog}`
}
