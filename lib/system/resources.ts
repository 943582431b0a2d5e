/**
 * readResources(): CPUs and memory as this process really has them (cgroup v2/v1 aware).
 * (Foundation stub: host figures only; the planning work replaces it.)
 */
import os from 'node:os'
import type { Resources } from '../plan/types'

export interface ReadResourcesOptions {
  /** Root of the filesystem to read /proc and /sys from (tests use fixture trees). */
  root?: string
}

export function readResources (_options: ReadResourcesOptions = {}): Resources {
  return { cpus: os.availableParallelism(), memoryMb: Math.floor(os.totalmem() / 1048576), source: 'host' }
}
