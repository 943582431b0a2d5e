/**
 * Pure parsers for the cgroup files that limit CPU and memory. No I/O here: resources.ts reads
 * the files and hands the text in, so every format quirk is a unit-testable string.
 *
 * Formats (kernel docs, research/launcher-anchors.md §5):
 * - /proc/self/cgroup: `<id>:<controllers>:<path>`; the cgroup v2 line is `0::/<path>`, v1 lines
 *   name their controllers (`4:memory:/docker/abc`, `2:cpu,cpuacct:/docker/abc`).
 * - v2 `cpu.max`: `max 100000` (no quota) or `<quota> <period>`; `memory.max` / `memory.high`:
 *   `max` or bytes.
 * - v1 `cpu.cfs_quota_us`: `-1` (no quota) or µs; `memory.limit_in_bytes`: bytes, where "no limit"
 *   is LONG_MAX rounded down to a page (9223372036854771712 on 4 KiB pages).
 */

export interface CgroupMembership {
  /** Path of the unified (v2) hierarchy, from the `0::` line. */
  v2Path?: string
  /** v1 controller name → path (`cpu` → `/docker/abc`). */
  v1: Map<string, string>
}

/**
 * Byte values at or above 2^60 mean "no limit": v1 writes LONG_MAX rounded to a page,
 * libuv/Node report UINT64_MAX. No machine has an exabyte of RAM, so the threshold is safe.
 */
export const UNLIMITED_BYTES = 2 ** 60

export function parseProcCgroup (text: string): CgroupMembership {
  const membership: CgroupMembership = { v1: new Map() }
  for (const line of text.split('\n')) {
    const first = line.indexOf(':')
    const second = line.indexOf(':', first + 1)
    if (first === -1 || second === -1) continue
    const id = line.slice(0, first)
    const controllers = line.slice(first + 1, second)
    const path = line.slice(second + 1).trim()
    if (path === '') continue
    if (id === '0' && controllers === '') {
      membership.v2Path = path
      continue
    }
    for (const c of controllers.split(',')) if (c !== '') membership.v1.set(c, path)
  }
  return membership
}

/** `/a/b/c` → `['/a/b/c', '/a/b', '/a', '/']`: a limit on any ancestor also binds this cgroup. */
export function ancestors (path: string): string[] {
  const parts = path.split('/').filter(Boolean)
  const list: string[] = []
  for (let i = parts.length; i >= 0; i--) list.push('/' + parts.slice(0, i).join('/'))
  return list
}

export interface CpuQuota { quota: number, period: number }

/** v2 `cpu.max`. `undefined` = no quota (`max`) or unreadable. */
export function parseCpuMax (text: string): CpuQuota | undefined {
  const [quota, period] = text.trim().split(/\s+/)
  if (quota === undefined || quota === 'max') return undefined
  return quotaOf(Number(quota), period === undefined ? 100000 : Number(period))
}

/** v1 `cpu.cfs_quota_us` + `cpu.cfs_period_us`. `-1` = no quota. */
export function parseCfsQuota (quotaText: string, periodText: string | undefined): CpuQuota | undefined {
  return quotaOf(Number(quotaText.trim()), periodText === undefined ? 100000 : Number(periodText.trim()))
}

function quotaOf (quota: number, period: number): CpuQuota | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined
  return { quota, period }
}

/** `memory.max`, `memory.high`, `memory.limit_in_bytes`: bytes, or `undefined` for no limit. */
export function parseMemoryLimit (text: string): number | undefined {
  const t = text.trim()
  if (t === '' || t === 'max' || !/^\d+$/.test(t)) return undefined
  const bytes = Number(t)
  return bytes >= UNLIMITED_BYTES ? undefined : bytes
}
