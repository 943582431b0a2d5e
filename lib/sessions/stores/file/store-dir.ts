/**
 * The store directory and its shards, held open: every later file operation goes through a
 * descriptor that was proven ours at boot (dir.ts), never through the names again.
 *
 * Why descriptors: a check by name is only good until the name changes. On Linux a path through
 * `/proc/self/fd/<n>/` resolves to the directory that descriptor holds (openat() semantics, which
 * Node's fs does not offer), so if a shard is later renamed away and a symlink put in its place,
 * reads, writes, renames and the reaper still work in the directory that was checked, and nothing
 * follows the link. Cost: ~0.4 µs more per call (measured: stat 3.3 µs by name, 3.7 µs through
 * /proc). Where /proc is not mounted (or not Linux) the names are used, checked at boot only.
 *
 * A shard removed while running (by hand) is created and checked again on the next write into it
 * (reopenShard). The descriptor it replaces is closed a minute later, not at once: an operation
 * still in flight on the old path must not land in whatever file reuses that descriptor number.
 */
import fs from 'node:fs'
import path from 'node:path'
import { SHARD_NAMES } from './paths'
import { openOwnDirectory, type DirLog } from './dir'

const RETIRED_FD_CLOSE_MS = 60_000

export class StoreDirectory {
  /** The directory as the user named it, made absolute (what messages show). */
  readonly dir: string
  /** True when operations go through /proc/self/fd (see the header). */
  readonly viaDescriptors: boolean
  private topFd: number
  private readonly shardFds = new Map<string, number>()
  /** Replaced descriptors, closed a little later (see the header). */
  private readonly retired = new Map<NodeJS.Timeout, number>()

  constructor (dir: string, private readonly where: string, private readonly log: DirLog | undefined) {
    this.dir = path.resolve(dir)
    this.topFd = openOwnDirectory(this.dir, this.dir, where, log, true)
    this.viaDescriptors = procFdWorks(this.topFd)
    try {
      for (const shard of SHARD_NAMES) this.shardFds.set(shard, this.openShard(shard))
    } catch (err) {
      this.close()
      throw err
    }
  }

  /** The path prefix for files of the top directory (the check probe, the reaper's stamp). */
  top (): string {
    return this.viaDescriptors ? `/proc/self/fd/${this.topFd}` : this.dir
  }

  /** The path prefix for files of one shard. */
  shard (name: string): string {
    const fd = this.shardFds.get(name)
    return this.viaDescriptors && fd !== undefined ? `/proc/self/fd/${fd}` : path.join(this.dir, name)
  }

  /** `file` as a person would name it (for messages): the real directory instead of /proc/self/fd/N. */
  shown (file: string): string {
    return this.shownIn(file)
  }

  /** The same for every such path in a text (an error message). */
  shownIn (text: string): string {
    if (!this.viaDescriptors) return text
    return text.replace(/\/proc\/self\/fd\/(\d+)/g, (whole, n: string) => {
      const fd = Number(n)
      if (fd === this.topFd) return this.dir
      for (const [name, shardFd] of this.shardFds) if (shardFd === fd) return path.join(this.dir, name)
      return whole
    })
  }

  /**
   * The shard was removed (a write into it failed with ENOENT): create it again and check it, and
   * the top directory too if that is gone. Throws ForeignDirectoryError if what is there now is
   * not ours.
   */
  reopenShard (name: string): void {
    let fd: number
    try {
      fd = this.openShard(name)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      this.retire(this.topFd)
      this.topFd = openOwnDirectory(this.dir, this.dir, this.where, this.log, true)
      fd = this.openShard(name)
    }
    const old = this.shardFds.get(name)
    this.shardFds.set(name, fd)
    if (old !== undefined) this.retire(old)
  }

  /** After the store is closed: nothing is in flight, every descriptor goes now. */
  close (): void {
    for (const [timer, fd] of this.retired) {
      clearTimeout(timer)
      closeQuietly(fd)
    }
    this.retired.clear()
    for (const fd of this.shardFds.values()) closeQuietly(fd)
    this.shardFds.clear()
    closeQuietly(this.topFd)
  }

  private openShard (name: string): number {
    const base = this.viaDescriptors ? `/proc/self/fd/${this.topFd}/${name}` : path.join(this.dir, name)
    return openOwnDirectory(base, path.join(this.dir, name), this.where, this.log)
  }

  private retire (fd: number): void {
    const timer = setTimeout(() => {
      this.retired.delete(timer)
      closeQuietly(fd)
    }, RETIRED_FD_CLOSE_MS)
    timer.unref()
    this.retired.set(timer, fd)
  }
}

/** Does `/proc/self/fd/<fd>` lead to the very directory `fd` holds? */
function procFdWorks (fd: number): boolean {
  if (process.platform !== 'linux') return false
  try {
    const byPath = fs.statSync(`/proc/self/fd/${fd}`)
    const byFd = fs.fstatSync(fd)
    return byPath.ino === byFd.ino && byPath.dev === byFd.dev
  } catch {
    return false
  }
}

function closeQuietly (fd: number): void {
  try { fs.closeSync(fd) } catch {}
}
