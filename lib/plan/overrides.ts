/**
 * The `cpus` / `memory-mb` knobs replace what readResources() detected, and the plan says so.
 * Pure. `detected` is undefined when both are overridden (nothing was probed).
 */
import type { Resources } from './types'

export function applyOverrides (
  detected: Resources | undefined,
  overrides: { cpus?: number, memoryMb?: number },
  sources: { cpus: string, memoryMb: string }
): Resources {
  const { cpus, memoryMb } = overrides
  if (cpus !== undefined && memoryMb !== undefined) {
    return {
      cpus,
      memoryMb,
      source: `override (${short(sources.cpus)}, ${short(sources.memoryMb)})`,
      detail: { cpus: `${cpus} (override: ${sources.cpus})`, memory: `${memoryMb} MB (override: ${sources.memoryMb})` }
    }
  }
  if (detected === undefined) throw new Error('applyOverrides: detected resources are required unless both figures are overridden')
  if (cpus === undefined && memoryMb === undefined) return detected
  const cpuDetail = detected.detail?.cpus ?? String(detected.cpus)
  const memoryDetail = detected.detail?.memory ?? `${detected.memoryMb} MB`
  return {
    cpus: cpus ?? detected.cpus,
    memoryMb: memoryMb ?? detected.memoryMb,
    source: `${detected.source}; override (${short(cpus !== undefined ? sources.cpus : sources.memoryMb)})`,
    detail: {
      cpus: cpus !== undefined ? `${cpus} (override: ${sources.cpus}; detected ${cpuDetail})` : cpuDetail,
      memory: memoryMb !== undefined ? `${memoryMb} MB (override: ${sources.memoryMb}; detected ${memoryDetail})` : memoryDetail
    }
  }
}

/** `env PRODSERVER_CPUS` → `PRODSERVER_CPUS`; `--cpus` and `option cpus` stay. */
function short (source: string): string {
  return source.replace(/^env /, '')
}
