/**
 * --watch in cluster mode: an edit is a reload — the primary's own SIGHUP path, one worker at a
 * time, each replacement ready before the old one drains — so the app keeps answering while you
 * edit, and a broken edit (the new worker fails to boot) leaves the old workers serving.
 */
import path from 'node:path'
import { withCloseStep, type ServeHandle } from '../cluster/handle'
import type { LauncherLog } from '../cluster/log'
import type { AppPlugin } from '../server/index'
import { watchTree } from './file-watcher'

/** The working directory (fastify-cli watches it too), plus the app's directory when it lies outside. */
export function watchRoots (app: AppPlugin | string, cwd = process.cwd()): string[] {
  const roots = [cwd]
  const file = typeof app === 'string' ? path.resolve(cwd, app) : process.argv[1]
  if (file !== undefined) {
    const dir = path.dirname(file)
    if (path.relative(cwd, dir).startsWith('..')) roots.push(dir)
  }
  return roots
}

export async function reloadOnChange (primary: ServeHandle, roots: readonly string[], log: LauncherLog): Promise<ServeHandle> {
  const cwd = process.cwd()
  const watcher = watchTree(roots, (files) => {
    log.info({ changed: files.map((f) => path.relative(cwd, f)) }, 'watch: reloading workers')
    process.kill(process.pid, 'SIGHUP')
  })
  await watcher.ready
  log.info({ roots: roots.map((r) => path.relative(cwd, r) || '.') }, 'watching for changes')
  return withCloseStep(primary, () => watcher.close())
}
