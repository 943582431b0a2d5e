/**
 * Stopping through npm: `npm start` and `npx prodserver` run us under `sh -c`, and Debian's sh
 * (dash) neither execs the command nor passes signals on. SIGTERM to npm is forwarded to that
 * shell only; the shell dies, npm exits, and the server used to keep running, re-parented to
 * PID 1. So a server started by a package manager (npm_lifecycle_event is set by npm, npx,
 * yarn and pnpm) watches its parent: when it is re-parented, the shell that started it is gone,
 * and it stops exactly as on SIGTERM (graceful drain). Outside a package manager a re-parent is
 * deliberate (`nohup … &`, a shell that exits) and changes nothing.
 */

import { readProcess } from '../system/parent-process'

/** How often the parent pid is read (a cheap getppid()); the drain starts at most this late. */
export const ORPHAN_POLL_MS = 250

export function stopWhenOrphaned (env: NodeJS.ProcessEnv, onOrphaned: (parent: number) => void, pollMs = ORPHAN_POLL_MS): () => void {
  if (env.npm_lifecycle_event === undefined || env.npm_lifecycle_event === '') return () => {}
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onOrphaned(parent)
  }, pollMs)
  timer.unref()
  return () => clearInterval(timer)
}

const SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'busybox'])

/**
 * npm as a container's PID 1 (CMD ["npm", "start"]) with its script run by `sh -c`: SIGTERM
 * reaches npm, npm passes it to the shell, the shell dies, npm exits — and with PID 1 gone the
 * kernel kills everything left in the container at once, so no drain can happen. Only the start
 * command can fix that; say how, once, at start-up.
 */
export function npmAsPid1Warning (env: NodeJS.ProcessEnv, ppid = process.ppid, read = readProcess): string | undefined {
  if (env.npm_lifecycle_event === undefined || env.npm_lifecycle_event === '') return undefined
  const parent = read(ppid)
  if (parent === undefined || !SHELLS.has(parent.comm) || parent.ppid !== 1) return undefined
  return `npm runs as PID 1 and started us through "${parent.comm} -c", which passes no signal on: a stop would kill the server without draining it; write the npm script as "exec prodserver serve …", or start prodserver directly (CMD ["node_modules/.bin/prodserver", "serve", …])`
}
