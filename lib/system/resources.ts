/**
 * readResources(): CPUs and memory as this process really has them (cgroup v2/v1 aware).
 *
 * This is the only module that reads /proc and /sys. Why not just Node's APIs: on Node 20,
 * os.availableParallelism() honours CPU affinity but ignores CFS quotas (libuv 1.46), and
 * os.totalmem() is the host's RAM — inside a 2-CPU/512 MB container both report the host, and a
 * formula fed with them forks dozens of workers into an OOM kill (research §5, pitfalls 2-3).
 *
 * Rules:
 * - CPUs = min(affinity count, quota / period), over this cgroup and every ancestor (a parent's
 *   quota binds its children). A fractional quota stays fractional here (1.5 is what the
 *   container has, and what `prodserver config` shows); the worker formula decides how to round.
 * - Memory = min(host RAM, memory.max, memory.high on v2 / memory.limit_in_bytes on v1), again
 *   over every ancestor. memory.high is included because the kernel throttles and reclaims hard
 *   above it, which is what a worker budget must stay under (libuv does the same).
 * - v1 memory.soft_limit_in_bytes is not a limit (only reclaim pressure under contention): ignored.
 * - "No limit" (`max`, -1, 9223372036854771712, anything ≥ 2^60) means unlimited.
 * - Hybrid hierarchies (v1 controllers plus a v2 `0::` line, as on this project's CI machine):
 *   a controller listed on a v1 line is read from its v1 mount; only the rest fall back to v2.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Resources } from '../plan/types'
import { ancestors, parseCfsQuota, parseCpuMax, parseMemoryLimit, parseProcCgroup, type CgroupMembership } from './cgroup'

export interface ReadResourcesOptions {
  /** Root of the filesystem to read /proc and /sys from (tests use fixture trees). Default `/`. */
  root?: string
  /** The host's figures (tests pin them); default os.availableParallelism() and os.totalmem(). */
  host?: { cpus?: number, memoryBytes?: number }
}

const MB = 1024 * 1024

/** The tightest limit found for one figure, and where it was read. */
interface Limit {
  value: number
  /** `/sys/fs/cgroup/…/cpu.max`, as it reads on the machine (relative to `root`). */
  file: string
  /** The raw text, as `prodserver config` quotes it. */
  raw: string
}

interface Probe {
  version?: 'v1' | 'v2'
  limit?: Limit
}

export function readResources (options: ReadResourcesOptions = {}): Resources {
  const root = options.root ?? '/'
  const hostCpus = options.host?.cpus ?? os.availableParallelism()
  const hostMemory = options.host?.memoryBytes ?? os.totalmem()

  const procText = readText(path.join(root, 'proc/self/cgroup'))
  const membership = procText === undefined ? undefined : parseProcCgroup(procText)
  const cpu = membership === undefined ? {} : probeCpu(root, membership)
  const memory = membership === undefined ? {} : probeMemory(root, membership)

  const cpuLimited = cpu.limit !== undefined && cpu.limit.value < hostCpus
  const memoryLimited = memory.limit !== undefined && memory.limit.value < hostMemory
  const cpus = cpuLimited ? roundCpus(cpu.limit!.value) : hostCpus
  const memoryMb = Math.floor((memoryLimited ? memory.limit!.value : hostMemory) / MB)

  const cpuDetail = cpuLimited
    ? `${cpus} (cgroup ${cpu.version} ${cpu.limit!.file} = ${cpu.limit!.raw}; host has ${hostCpus})`
    : `${hostCpus} (host: os.availableParallelism(), CPU affinity${noLimitNote(cpu, 'CPU quota')})`
  const memoryDetail = memoryLimited
    ? `${memoryMb} MB (cgroup ${memory.version} ${memory.limit!.file} = ${memory.limit!.raw}; host has ${Math.floor(hostMemory / MB)} MB)`
    : `${memoryMb} MB (host: os.totalmem()${noLimitNote(memory, 'memory limit')})`

  return { cpus, memoryMb, source: sourceLine(cpu, memory, cpuLimited, memoryLimited), detail: { cpus: cpuDetail, memory: memoryDetail } }
}

function sourceLine (cpu: Probe, memory: Probe, cpuLimited: boolean, memoryLimited: boolean): string {
  const limits: string[] = []
  if (cpuLimited) limits.push(`${path.basename(cpu.limit!.file)} ${cpu.limit!.raw}`)
  if (memoryLimited) limits.push(`${path.basename(memory.limit!.file)} ${memory.limit!.raw}`)
  const versions = [...new Set([cpuLimited ? cpu.version : undefined, memoryLimited ? memory.version : undefined].filter(Boolean))]
  if (limits.length > 0) {
    const rest = !cpuLimited ? '; CPUs from host' : !memoryLimited ? '; memory from host' : ''
    return `cgroup ${versions.join('+')} (${limits.join('; ')})${rest}`
  }
  const seen = [...new Set([cpu.version, memory.version].filter(Boolean))]
  return seen.length > 0 ? `host (cgroup ${seen.join('+')}: no limits set)` : 'host'
}

function noLimitNote (probe: Probe, what: string): string {
  if (probe.version === undefined) return ''
  return probe.limit === undefined ? `; cgroup ${probe.version}: no ${what}` : `; cgroup ${probe.version} ${what} is above it`
}

/** Two decimals are plenty for display; never 0, so a tiny quota still counts as some CPU. */
function roundCpus (cpus: number): number {
  return Math.max(0.01, Math.round(cpus * 100) / 100)
}

function probeCpu (root: string, m: CgroupMembership): Probe {
  const v1Path = m.v1.get('cpu')
  const v1Dir = v1Path === undefined ? undefined : v1Mount(root, ['cpu,cpuacct', 'cpuacct,cpu', 'cpu'])
  if (v1Path !== undefined && v1Dir !== undefined) {
    return {
      version: 'v1',
      limit: tightest(root, v1Dir, v1Path, (dir) => {
        const quotaText = readText(path.join(dir, 'cpu.cfs_quota_us'))
        if (quotaText === undefined) return []
        const periodText = readText(path.join(dir, 'cpu.cfs_period_us'))
        const q = parseCfsQuota(quotaText, periodText)
        return q === undefined ? [] : [{ file: path.join(dir, 'cpu.cfs_quota_us'), value: q.quota / q.period, raw: `${q.quota}/${q.period}` }]
      })
    }
  }
  const v2Dir = v2Mount(root)
  if (m.v2Path === undefined || v2Dir === undefined) return {}
  return {
    version: 'v2',
    limit: tightest(root, v2Dir, m.v2Path, (dir) => {
      const text = readText(path.join(dir, 'cpu.max'))
      const q = text === undefined ? undefined : parseCpuMax(text)
      return q === undefined ? [] : [{ file: path.join(dir, 'cpu.max'), value: q.quota / q.period, raw: `${q.quota}/${q.period}` }]
    })
  }
}

function probeMemory (root: string, m: CgroupMembership): Probe {
  const v1Path = m.v1.get('memory')
  const v1Dir = v1Path === undefined ? undefined : v1Mount(root, ['memory'])
  if (v1Path !== undefined && v1Dir !== undefined) {
    return { version: 'v1', limit: tightest(root, v1Dir, v1Path, (dir) => bytesIn(dir, ['memory.limit_in_bytes'])) }
  }
  const v2Dir = v2Mount(root)
  if (m.v2Path === undefined || v2Dir === undefined) return {}
  return { version: 'v2', limit: tightest(root, v2Dir, m.v2Path, (dir) => bytesIn(dir, ['memory.max', 'memory.high'])) }
}

function bytesIn (dir: string, files: string[]): Limit[] {
  const found: Limit[] = []
  for (const name of files) {
    const text = readText(path.join(dir, name))
    const bytes = text === undefined ? undefined : parseMemoryLimit(text)
    if (bytes !== undefined) found.push({ file: path.join(dir, name), value: bytes, raw: String(bytes) })
  }
  return found
}

/**
 * Walks from the process's cgroup up to the mount root and keeps the smallest limit. Directories
 * that do not exist are skipped: inside a container without a cgroup namespace, /proc/self/cgroup
 * names a host path while the mount shows the container's own cgroup as its root.
 */
function tightest (root: string, mount: string, cgroupPath: string, read: (dir: string) => Limit[]): Limit | undefined {
  let best: Limit | undefined
  for (const p of ancestors(cgroupPath)) {
    for (const limit of read(path.join(mount, p))) {
      if (best === undefined || limit.value < best.value) best = { ...limit, file: '/' + path.relative(root, limit.file) }
    }
  }
  return best
}

/** The unified hierarchy: `/sys/fs/cgroup` (pure v2) or `/sys/fs/cgroup/unified` (hybrid). */
function v2Mount (root: string): string | undefined {
  for (const sub of ['sys/fs/cgroup', 'sys/fs/cgroup/unified']) {
    if (fs.existsSync(path.join(root, sub, 'cgroup.controllers'))) return path.join(root, sub)
  }
  return undefined
}

function v1Mount (root: string, names: string[]): string | undefined {
  for (const name of names) {
    const dir = path.join(root, 'sys/fs/cgroup', name)
    if (fs.existsSync(dir)) return dir
  }
  return undefined
}

function readText (file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}
