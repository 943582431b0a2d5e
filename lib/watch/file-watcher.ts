/**
 * Watches the project for edits (chokidar: one inotify watch per directory, ignored directories
 * never entered — node's own recursive fs.watch would also watch node_modules) and reports them
 * debounced: an editor's save (write, rename, chmod) or a `git checkout` of ten files is one
 * change, reported once the tree has been quiet for `quietMs`.
 */
import type { FSWatcher } from 'chokidar'
import { isIgnoredPath } from './ignore'

export interface TreeWatcher {
  /** Resolves once the initial scan is done: edits from then on are reported. */
  ready: Promise<void>
  close (): Promise<void>
}

export const QUIET_MS = 300

export function watchTree (roots: readonly string[], onChange: (files: string[]) => void, quietMs = QUIET_MS): TreeWatcher {
  // Loaded here, not at start-up: a production server (no --watch) never reads the watcher.
  const { watch } = require('chokidar') as typeof import('chokidar')
  const watcher: FSWatcher = watch([...roots], {
    ignoreInitial: true,
    ignored: (file, stats) => roots.some((root) => isIgnoredPath(file, root, stats?.isDirectory() ?? false))
  })
  let changed = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  watcher.on('all', (_event, file) => {
    changed.add(file)
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      const files = [...changed]
      changed = new Set()
      onChange(files)
    }, quietMs)
  })
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
  return {
    ready,
    close: async () => {
      if (timer !== undefined) clearTimeout(timer)
      await watcher.close()
    }
  }
}
