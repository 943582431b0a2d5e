/**
 * Which paths a change in never restarts the app (pure). Dependencies and VCS data change under
 * npm and git, not under your editor; logs and editor swap files change while the app runs, and
 * `prodserver serve app.js -w > app.log` in the project would otherwise restart forever.
 */
import path from 'node:path'

const IGNORED_DIRS = new Set(['node_modules', '.git'])

export function isIgnoredPath (file: string, root: string, isDirectory = false): boolean {
  const rel = path.relative(root, file)
  if (rel === '' || rel.startsWith('..')) return false
  const parts = rel.split(path.sep)
  const base = parts[parts.length - 1]
  for (const dir of parts.slice(0, -1)) {
    // Dot-directories (.git, .cache, .tap, .idea, .vscode, .nyc_output) are tools' state.
    if (IGNORED_DIRS.has(dir) || dir.startsWith('.')) return true
  }
  if (IGNORED_DIRS.has(base) || (isDirectory && base.startsWith('.'))) return true
  return /\.(log|swp|swx|swo)$|~$|^\.#|^#.*#$|^4913$/.test(base)
}
