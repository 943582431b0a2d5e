/**
 * How much memory a process uses: RSS (what the kernel and a cgroup OOM killer count) and the V8
 * heap (what `--max-old-space-size` caps; reaching it aborts the process with "FATAL ERROR:
 * Reached heap limit").
 *
 * The primary reads a worker's RSS from /proc/<pid>/status itself: no message to the worker, so a
 * sample costs one small procfs read and works while the worker is busy. The heap can only be
 * measured inside the process; workers send it with their heartbeat (cluster/worker.ts).
 */
import fs from 'node:fs'
import v8 from 'node:v8'

const MB = 1024 * 1024

export interface HeapUse {
  usedMb: number
  /** The old-space cap the process aborts at (see oldSpaceLimitMb). */
  limitMb: number
}

/**
 * RSS of `pid` in MB: VmRSS from /proc/<pid>/status (kB, whatever the page size), or this
 * process's own figure from Node. Undefined when the process is gone or there is no procfs (not
 * Linux): the heap budget still applies then.
 */
export function rssMb (pid: number, procRoot = '/proc'): number | undefined {
  if (pid === process.pid && procRoot === '/proc') return process.memoryUsage.rss() / MB
  let text: string
  try {
    text = fs.readFileSync(`${procRoot}/${pid}/status`, 'latin1')
  } catch {
    return undefined
  }
  return parseVmRssMb(text)
}

export function parseVmRssMb (status: string): number | undefined {
  const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(status)
  return m === null ? undefined : Number(m[1]) / 1024
}

/** This process's V8 heap: used now, and the limit it aborts at. */
export function ownHeap (): HeapUse {
  return { usedMb: v8.getHeapStatistics().used_heap_size / MB, limitMb: oldSpaceLimitMb() }
}

let cachedLimitMb: number | undefined

/**
 * The heap size V8 aborts at. `heap_size_limit` is not it: it adds the young generation (48 MB on
 * Node 20/22, 192 MB on Node 24 for a 150 MB old space), and a leak dies when the *old* space
 * reaches `--max-old-space-size` (measured: FATAL at used ≈ 151 MB with the flag at 150, while
 * heap_size_limit says 198). So the flag wins when the process has one (our workers always do),
 * from its command line or NODE_OPTIONS; otherwise V8's default, for which heap_size_limit is
 * the closest figure Node exposes.
 */
export function oldSpaceLimitMb (execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): number {
  const fromFlags = maxOldSpaceFlag(execArgv) ?? maxOldSpaceFlag((nodeOptions ?? '').split(/\s+/))
  if (fromFlags !== undefined) return fromFlags
  cachedLimitMb ??= v8.getHeapStatistics().heap_size_limit / MB
  return cachedLimitMb
}

/** The last --max-old-space-size=N (or `--max_old_space_size N`) in an argument list. */
export function maxOldSpaceFlag (args: readonly string[]): number | undefined {
  let found: number | undefined
  for (let i = 0; i < args.length; i++) {
    const m = /^--max[-_]old[-_]space[-_]size(?:=(\d+))?$/.exec(args[i])
    if (m === null) continue
    const value = Number(m[1] ?? args[i + 1])
    if (Number.isFinite(value) && value > 0) found = value
  }
  return found
}
