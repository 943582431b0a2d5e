/**
 * Where the file store goes when SESSION_DIR is not set, and what happens when that place is taken.
 *
 * The default is `$TMPDIR/fastify-prodserver-sessions-<uid>-<hash of the app directory>` (config.ts):
 * shared by every worker of one app without any setting. But it is a predictable name in a
 * directory every local user can write to, so another user can create it first (issue 10). Such a
 * directory is never used (dir.ts says why), and the server does not refuse to start either —
 * that would let any local user stop it. Instead a fresh private directory is made next to it
 * (mkdtemp: a random name, 0700, ours), with one warning:
 *   - under `prodserver serve` in cluster mode the primary makes it once and hands it to every
 *     worker (PRODSERVER_INTERNAL_SESSION_DIR), so the workers still share sessions, across
 *     reloads too, for the primary's lifetime;
 *   - elsewhere (one process, or workers of a cluster manager of your own) each process makes its
 *     own: sessions are then not shared between processes. Set SESSION_DIR.
 * Sessions in a fresh directory do not outlive the process (or the primary) that made it; it is
 * left in the temp dir (0700, files 0600) for the system's temp cleaner.
 * An explicit SESSION_DIR that is not ours fails the boot instead: a setting that cannot be
 * honoured is refused, never silently replaced.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SHARD_NAMES } from './paths'
import { foreignReason } from './dir'

export const INTERNAL_SESSION_DIR_ENV = 'PRODSERVER_INTERNAL_SESSION_DIR'

/**
 * The default file-store directory: one per (user, application) on this host, so every worker of
 * one app shares it (they run as the same user in the same working directory) and two apps or
 * two users never read each other's sessions. Under the OS temp dir because it is writable
 * everywhere (containers with a read-only app dir included); set SESSION_DIR for sessions that must
 * survive a reboot or a tmp cleaner.
 */
export function defaultSessionDir (cwd: string = process.cwd()): string {
  const uid = typeof process.getuid === 'function' ? String(process.getuid()) : safeUserName()
  const app = crypto.createHash('sha256').update(cwd).digest('hex').slice(0, 12)
  return path.join(os.tmpdir(), `fastify-prodserver-sessions-${uid}-${app}`)
}

function safeUserName (): string {
  try {
    return os.userInfo().username.replace(/[^A-Za-z0-9_-]/g, '_')
  } catch {
    return 'user'
  }
}

/** A new private directory next to `taken`: `<taken>-XXXXXX`, 0700, owned by this process. */
export function makePrivateDir (taken: string): string {
  return fs.mkdtempSync(`${taken}-`)
}

export function fallbackWarning (taken: string, reason: string, fresh: string, shared: boolean): string {
  return `sessions: the default session directory ${taken} cannot be used (${reason}; another local user may have created it); ` +
    `using a new private directory ${fresh} instead, ` +
    (shared ? 'shared by the workers of this server until it stops' : 'for this process only: sessions are not shared with other processes') +
    ' and not kept across restarts; set SESSION_DIR to a directory of your own'
}

/**
 * For the launcher's primary: when the default directory of its workers is taken, a private one
 * for all of them (and the warning to log); undefined when the default can be used (or created).
 */
export function workersDefaultDir (defaultDir: string): { dir: string, warning: string } | undefined {
  const reason = foreignReason(defaultDir, SHARD_NAMES)
  if (reason === null) return undefined
  const fresh = makePrivateDir(defaultDir)
  return { dir: fresh, warning: fallbackWarning(defaultDir, reason, fresh, true) }
}
