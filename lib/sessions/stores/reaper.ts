/**
 * Removes what the file store leaves behind: expired records, lapsed tombstones, orphaned temp
 * files. Stat-only (pitfall 13): a record's expiry IS its mtime (file.ts), so no file is opened
 * or parsed — session-file-store's reaper ran a full `get` (with 5 retries) per file (§4.1).
 *
 * - Bounded concurrency (default 16 stats/unlinks in flight): a directory of 100k sessions does not
 *   hit EMFILE (session-file-store #6, PR #15).
 * - Several workers may reap the same directory at once: every ENOENT (someone else was faster)
 *   is normal; no error ever escapes a run (it is counted), nothing is printed.
 * - Record locks (`<id>.lock`, file/record-lock.ts) count as temp files: a live writer holds one
 *   for milliseconds, so one a minute old was left by a process that died.
 * - Temp files are judged by ctime, not mtime: a temp file gets its final mtime (the expiry, in
 *   the future) before its rename, while ctime is the time of its last change.
 * - Known, documented race: a record found expired may be replaced by a fresh write to the same id
 *   between our stat and our unlink. Expired ids are not normally written again (@fastify/session
 *   issues a new id for an expired session), and we re-check the mtime just before unlinking.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { OWNED_NAME, SHARD_NAMES, TEMP_NAME } from './file/paths'
import { unlinkIfPresent } from './file/missing-ok'

export interface ReapOptions {
  /** Temp files whose ctime is older than this are orphans (a crashed writer). Default 60 s. */
  tempMaxAgeMs?: number
  /** stat/unlink calls in flight at once. Default 16. */
  concurrency?: number
  /** Clock, for tests. */
  now?: number
}

export interface ReapResult {
  scanned: number
  expired: number
  tombstones: number
  temps: number
  errors: number
}

export async function reapDirectory (dir: string, opts: ReapOptions = {}): Promise<ReapResult> {
  const now = opts.now ?? Date.now()
  const tempMaxAgeMs = opts.tempMaxAgeMs ?? 60_000
  const result: ReapResult = { scanned: 0, expired: 0, tombstones: 0, temps: 0, errors: 0 }
  let work: string[]
  try {
    work = await reapableFiles(dir)
  } catch {
    result.errors++
    return result
  }
  result.scanned = work.length
  await forEachLimited(work, opts.concurrency ?? 16, async (file) => {
    const name = path.basename(file)
    try {
      const st = await fsp.stat(file)
      if (TEMP_NAME.test(name)) {
        if (now - st.ctimeMs < tempMaxAgeMs) return
        if (await unlinkIfPresent(file)) result.temps++
        return
      }
      if (st.mtimeMs > now) return
      // Narrow the stat→unlink race with a concurrent writer (see header).
      const again = await fsp.stat(file)
      if (again.mtimeMs > Date.now()) return
      if (!await unlinkIfPresent(file)) return
      if (name.endsWith('.gone')) result.tombstones++
      else result.expired++
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') result.errors++
    }
  })
  return result
}

/**
 * The store's files: in the shard subdirectories (paths.ts), and at the top (the check() probe's
 * temp files, records of a layout without shards).
 */
async function reapableFiles (dir: string): Promise<string[]> {
  const ours = (d: string, names: string[]): string[] =>
    names.filter((n) => OWNED_NAME.test(n) || TEMP_NAME.test(n)).map((n) => path.join(d, n))
  const files = ours(dir, await fsp.readdir(dir))
  for (const shard of SHARD_NAMES) {
    const d = path.join(dir, shard)
    const names = await fsp.readdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []
      throw err
    })
    files.push(...ours(d, names))
  }
  return files
}

async function forEachLimited<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++])
  })
  await Promise.all(lanes)
}

export interface Reaper {
  /** Run one pass now (also what the timer does). Never rejects. */
  runOnce (): Promise<ReapResult | null>
  stop (): Promise<void>
}

/**
 * Runs reapDirectory every `intervalMs` (unref'd timer: never keeps the process alive).
 *
 * Several workers of one host share the directory; each has a Reaper, but a stamp file
 * (`.reaped`, its mtime = the last pass) lets only the first worker whose timer fires in an interval
 * do the pass: best effort, two passes at once are harmless. The first pass comes after a random
 * part of the interval so workers started together do not fire together.
 */
export function startReaper (dir: string, intervalMs: number, opts: ReapOptions & { onResult?: (r: ReapResult) => void } = {}): Reaper {
  const stamp = path.join(dir, '.reaped')
  let running: Promise<ReapResult | null> | null = null
  let stopped = false

  async function pass (force: boolean): Promise<ReapResult | null> {
    try {
      if (!force) {
        const last = await fsp.stat(stamp).then((s) => s.mtimeMs, () => 0)
        if (Date.now() - last < intervalMs * 0.9) return null
      }
      const t = Date.now() / 1000
      await fsp.utimes(stamp, t, t).catch(async () => await fsp.writeFile(stamp, '', { mode: 0o600 }))
      const r = await reapDirectory(dir, opts)
      opts.onResult?.(r)
      return r
    } catch {
      return null
    }
  }

  function runOnce (force = true): Promise<ReapResult | null> {
    if (running === null) running = pass(force).finally(() => { running = null })
    return running
  }

  let timer: NodeJS.Timeout | null = null
  const schedule = (delay: number): void => {
    if (stopped) return
    timer = setTimeout(() => {
      void runOnce(false).finally(() => schedule(intervalMs))
    }, delay)
    timer.unref()
  }
  schedule(Math.round(intervalMs * (0.5 + Math.random() * 0.5)))

  return {
    runOnce: async () => await runOnce(true),
    async stop () {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      await running
    }
  }
}
