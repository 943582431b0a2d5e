/**
 * `--pid-file`: for init systems and scripts that want one (systemd's PIDFile=, start-stop-daemon,
 * monit). The control socket does not need it: `prodserver status|reload|stop` find the server
 * without a pid.
 *
 * - Written when the server starts (the primary's pid in cluster mode), before anything listens,
 *   so a second instance with the same pid file is refused before it binds a port.
 * - Refused when it holds the pid of a running server (exit 2, naming the knob). A pid that is
 *   gone, or now belongs to a program that is not Node (pids are reused after a reboot), is a
 *   leftover: overwritten, with a warning.
 * - Never written through a symlink, and never over a file that is not a pid file (a typo in the
 *   path must not clobber /etc/something).
 * - Removed when the server exits — only if it still holds our pid.
 */
import fs from 'node:fs'
import path from 'node:path'
import { KnobError } from '../config/values'
import { isAlive, rmIfThere } from './dir'

export interface PidFile {
  path: string
  /** Removes the file if it still holds our pid (also done at process exit). */
  release (): void
}

export function claimPidFile (file: string, source: string, warn: (msg: string) => void): PidFile {
  const abs = path.resolve(file)
  const refuse = (why: string): never => {
    throw new KnobError(`pid-file=${JSON.stringify(file)} (${source}) ${why}`)
  }
  let previous: string | undefined
  try {
    const st = fs.lstatSync(abs)
    if (st.isSymbolicLink()) refuse('is a symlink; accepted: a regular file path (a pid file is never written through a symlink)')
    if (!st.isFile()) refuse('is not a regular file; accepted: the path of a pid file')
    previous = fs.readFileSync(abs, 'utf8')
  } catch (err) {
    if (err instanceof KnobError) throw err
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') refuse(`cannot be read: ${(err as Error).message}`)
  }
  if (previous !== undefined) {
    if (!/^\s*\d*\s*$/.test(previous)) refuse('exists and is not a pid file (it holds something other than a pid); accepted: a pid file, or a path that does not exist yet')
    const pid = Number(previous.trim())
    if (pid > 0 && pid !== process.pid && isAlive(pid)) {
      if (isNodeProcess(pid)) refuse(`holds pid ${pid}, which is running; accepted: the pid file of no running server (stop it first: prodserver stop, or kill ${pid})`)
      warn(`pid-file ${abs} held pid ${pid}, now a process that is not Node (the pid was reused): overwritten`)
    } else if (pid > 0 && pid !== process.pid) {
      warn(`pid-file ${abs} held pid ${pid}, which is not running (left by a server that was killed): overwritten`)
    }
  }
  const tmp = `${abs}.${process.pid}.tmp`
  try {
    fs.writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644, flag: 'w' })
    fs.renameSync(tmp, abs)
  } catch (err) {
    rmIfThere(tmp)
    refuse(`cannot be written: ${(err as Error).message}; accepted: a path in an existing directory this user can write`)
  }
  const release = (): void => {
    process.removeListener('exit', release)
    try {
      if (fs.readFileSync(abs, 'utf8').trim() === String(process.pid)) fs.unlinkSync(abs)
    } catch {
      // gone already, or replaced by someone else: theirs now
    }
  }
  process.on('exit', release)
  return { path: abs, release }
}

/** The pid's command line names node or prodserver (Linux); where /proc is missing, assume it does. */
function isNodeProcess (pid: number): boolean {
  let cmdline: string
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')
  } catch {
    return true
  }
  return /(^|[/\0])node[^/\0]*(\0|$)|prodserver/.test(cmdline)
}
