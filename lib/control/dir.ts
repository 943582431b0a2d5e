/**
 * The control directory: where a running server puts its control socket (`<pid>.sock`) and its
 * info file (`<pid>.json`, with the token), and where `prodserver status|reload|stop` look.
 *
 * Private by construction: the directory is 0700 and owned by the server's user, the files in it
 * 0600, and nothing in it is followed through a symlink (lstat, O_NOFOLLOW). connect() on a unix
 * socket needs search permission on its directory, so only that user and root reach the socket;
 * the token in the 0600 info file is checked on every request as a second lock — Node cannot read
 * SO_PEERCRED, so proving the client can read a file only the server's user (or root) can read is
 * the peer check available without a native addon.
 *
 * Where, without a knob: `$XDG_RUNTIME_DIR/prodserver` (per-user, tmpfs, made by systemd-logind)
 * when that variable names a directory of ours, else `<os.tmpdir()>/prodserver-<uid>`. A client
 * searches both (and /run/user/<uid>/prodserver: a shell often has XDG_RUNTIME_DIR where a service
 * has not), so `prodserver status` finds a server without knowing its pid. `control-dir` (knob,
 * PRODSERVER_CONTROL_DIR) overrides both — needed when the server runs with a private /tmp
 * (systemd PrivateTmp=) that the operator's shell does not see.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ServerInfo } from './protocol'

export class ControlDirError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ControlDirError'
  }
}

/** sun_path is 108 bytes on Linux (104 on macOS); a longer socket path cannot be bound. */
const MAX_SOCKET_PATH = 100

function currentUid (): number {
  return typeof process.getuid === 'function' ? process.getuid() : -1
}

function xdgDir (env: NodeJS.ProcessEnv, uid: number): string | undefined {
  const runtime = env.XDG_RUNTIME_DIR
  if (runtime === undefined || !path.isAbsolute(runtime)) return undefined
  try {
    const st = fs.lstatSync(runtime)
    if (!st.isDirectory() || st.uid !== uid) return undefined
  } catch {
    return undefined
  }
  return path.join(runtime, 'prodserver')
}

function tmpDir (uid: number): string {
  return path.join(os.tmpdir(), `prodserver-${uid}`)
}

/**
 * File names: `<pid>.sock` / `<pid>.json`, and `<pid>-<n>` for the n-th further server of one
 * process (serve() called twice), so they never take each other's files.
 */
export function socketPath (dir: string, id: string): string {
  return path.join(dir, `${id}.sock`)
}

export function infoPath (dir: string, id: string): string {
  return path.join(dir, `${id}.json`)
}

const ENTRY = /^(\d+)(-\d+)?\.(json|sock)$|^(\d+)(-\d+)?\.json\.[0-9a-f]+\.tmp$/

/** Where this server puts its socket. */
export function serverControlDir (explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, uid = currentUid()): string {
  if (explicit !== undefined) return path.resolve(explicit)
  return xdgDir(env, uid) ?? tmpDir(uid)
}

/** Where a client looks, in order. root also looks at every user's default directories. */
export function clientControlDirs (explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, uid = currentUid()): string[] {
  if (explicit !== undefined) return [path.resolve(explicit)]
  const dirs = [xdgDir(env, uid), path.join('/run/user', String(uid), 'prodserver'), tmpDir(uid)]
  if (uid === 0) {
    dirs.push(...subdirs(os.tmpdir(), /^prodserver-\d+$/))
    dirs.push(...subdirs('/run/user', /^\d+$/).map((d) => path.join(d, 'prodserver')))
  }
  return [...new Set(dirs.filter((d): d is string => d !== undefined))]
}

function subdirs (parent: string, name: RegExp): string[] {
  try {
    return fs.readdirSync(parent).filter((n) => name.test(n)).map((n) => path.join(parent, n))
  } catch {
    return []
  }
}

/**
 * Creates (or checks) the server's directory: ours, a real directory, 0700. A directory of ours
 * with looser permissions is tightened (with a warning); anyone else's is refused.
 */
export function preparePrivateDir (dir: string, warn: (msg: string) => void): void {
  const uid = currentUid()
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 })
  try {
    fs.mkdirSync(dir, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ControlDirError(`cannot create control directory ${dir}: ${(err as Error).message}`)
  }
  const st = fs.lstatSync(dir)
  if (st.isSymbolicLink() || !st.isDirectory()) throw new ControlDirError(`control directory ${dir} is not a directory (a symlink or a file is never followed)`)
  if (uid !== -1 && st.uid !== uid) throw new ControlDirError(`control directory ${dir} is owned by uid ${st.uid}, not by this process (uid ${uid})`)
  if ((st.mode & 0o077) !== 0) {
    fs.chmodSync(dir, 0o700)
    warn(`control directory ${dir} had permissions ${(st.mode & 0o777).toString(8).padStart(4, '0')}; tightened to 0700`)
  }
  if (socketPath(dir, `${process.pid}-99`).length > MAX_SOCKET_PATH) {
    throw new ControlDirError(`control directory ${dir} is too long for a unix socket path (${MAX_SOCKET_PATH} bytes at most with the file name)`)
  }
}

/**
 * A client's check of a directory before trusting what is in it: a real directory, private, owned
 * by this user — or, for root, by anyone (then that user's servers are the ones found).
 * Undefined when there is no such directory; an error when it exists but is not private.
 */
export function checkPrivateDir (dir: string): number | undefined {
  let st: fs.Stats
  try {
    st = fs.lstatSync(dir)
  } catch {
    return undefined
  }
  const uid = currentUid()
  if (st.isSymbolicLink() || !st.isDirectory()) throw new ControlDirError(`control directory ${dir} is not a directory; not trusted`)
  if (uid !== -1 && uid !== 0 && st.uid !== uid) throw new ControlDirError(`control directory ${dir} is owned by uid ${st.uid}, not by you (uid ${uid}); not trusted`)
  if ((st.mode & 0o077) !== 0) throw new ControlDirError(`control directory ${dir} has permissions ${(st.mode & 0o777).toString(8).padStart(4, '0')}, readable by other users; not trusted (accepted: 0700)`)
  return st.uid
}

/** One server's info file, read without following a symlink; undefined if it is not a trustworthy one. */
export function readServerInfo (file: string, ownerUid: number): ServerInfo | undefined {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.uid !== ownerUid || (st.mode & 0o077) !== 0 || st.size > 65536) return undefined
    const info = JSON.parse(fs.readFileSync(fd, 'utf8')) as ServerInfo
    if (typeof info.pid !== 'number' || typeof info.token !== 'string' || typeof info.socket !== 'string' || !Array.isArray(info.addresses)) return undefined
    return info
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

/** True while a process with this pid exists (EPERM: it exists, it is just not ours). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface FoundServers {
  servers: ServerInfo[]
  /** Directories looked at (for the "no server running" message). */
  looked: string[]
}

/** Every live server in these directories. A directory that is there but not private is an error. */
export function findServers (dirs: string[]): FoundServers {
  const servers: ServerInfo[] = []
  for (const dir of dirs) {
    const owner = checkPrivateDir(dir)
    if (owner === undefined) continue
    for (const name of namesIn(dir)) {
      const m = ENTRY.exec(name)
      if (m === null || m[3] !== 'json') continue
      const info = readServerInfo(path.join(dir, name), owner)
      // The socket is the one named like the info file, in this directory: never a path the file names.
      if (info !== undefined && info.pid === Number(m[1]) && isAlive(info.pid)) servers.push({ ...info, socket: socketPath(dir, name.slice(0, -5)) })
    }
  }
  return { servers, looked: dirs }
}

/** Files of servers that are gone (SIGKILL, power loss): their pid is not alive. */
export function removeStaleEntries (dir: string): void {
  for (const name of namesIn(dir)) {
    const m = ENTRY.exec(name)
    if (m === null) continue
    const pid = Number(m[1] ?? m[4])
    if (pid !== process.pid && !isAlive(pid)) rmIfThere(path.join(dir, name))
  }
}

export function rmIfThere (file: string): void {
  try {
    fs.unlinkSync(file)
  } catch {
    // already gone
  }
}

function namesIn (dir: string): string[] {
  try {
    return fs.readdirSync(dir)
  } catch {
    return []
  }
}
