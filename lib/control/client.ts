/**
 * The client side of the control socket: find the running server without knowing its pid, then
 * send it one command.
 *
 * Which server, when one user runs several: the only one there is; else the ones that listen on
 * the `--port` / `--unix-socket` given; else the one started from the current working directory.
 * Anything still ambiguous is an error that lists them (pick with --port or --control-dir).
 */
import net from 'node:net'
import { clientControlDirs, findServers } from './dir'
import type { ControlCommand, ControlReply, ServerInfo } from './protocol'

/** "Not running" (LSB init scripts' status code for a stopped service). */
export const EXIT_NOT_RUNNING = 3

export class ControlClientError extends Error {
  constructor (message: string, readonly exitCode: number) {
    super(message)
    this.name = 'ControlClientError'
  }
}

export interface ServerSelector {
  controlDir?: string
  port?: number
  unixSocket?: string
  cwd: string
  env?: NodeJS.ProcessEnv
}

/** The one server the command is for, or an error saying why there is none. */
export function locateServer (selector: ServerSelector): ServerInfo {
  const { servers, looked } = findServers(clientControlDirs(selector.controlDir, selector.env))
  if (servers.length === 0) {
    throw new ControlClientError(`no prodserver server is running for this user (looked in ${looked.join(', ')}; set --control-dir if it uses another)`, EXIT_NOT_RUNNING)
  }
  return chooseServer(servers, selector)
}

export function chooseServer (servers: ServerInfo[], selector: Omit<ServerSelector, 'controlDir' | 'env'>): ServerInfo {
  let candidates = servers
  const wanted: string[] = []
  if (selector.port !== undefined) {
    wanted.push(`port ${selector.port}`)
    candidates = candidates.filter((s) => s.addresses.some((a) => portOf(a) === selector.port))
  }
  if (selector.unixSocket !== undefined) {
    wanted.push(`unix socket ${selector.unixSocket}`)
    candidates = candidates.filter((s) => s.addresses.includes(selector.unixSocket as string))
  }
  if (candidates.length === 0) {
    throw new ControlClientError(`no running server listens on ${wanted.join(' and ')}; running: ${servers.map(describeServer).join('; ')}`, EXIT_NOT_RUNNING)
  }
  if (candidates.length === 1) return candidates[0]
  const here = candidates.filter((s) => s.cwd === selector.cwd)
  if (here.length === 1) return here[0]
  throw new ControlClientError(`${candidates.length} servers are running (${candidates.map(describeServer).join('; ')}); choose one with --port or --unix-socket, or run from its working directory`, 2)
}

export function describeServer (s: ServerInfo): string {
  return `pid ${s.pid} ${s.mode} ${s.addresses.join(' ') || '(starting)'}${s.app !== undefined ? ` ${s.app}` : ''} in ${s.cwd}`
}

function portOf (address: string): number | undefined {
  const m = /:(\d+)\/?$/.exec(address)
  return m === null ? undefined : Number(m[1])
}

export interface Connection {
  /** The server's one reply. */
  reply: Promise<ControlReply>
  /** Resolves when the server closes the connection (for `stop`: when its process is gone). */
  closed: Promise<void>
}

/** Sends one command; `connectTimeoutMs` bounds reaching the server, not its work (a reload takes what it takes). */
export function sendCommand (server: ServerInfo, command: ControlCommand, connectTimeoutMs = 5000): Connection {
  const socket = net.connect(server.socket)
  let onReply!: (r: ControlReply) => void
  let onFail!: (err: Error) => void
  const reply = new Promise<ControlReply>((resolve, reject) => { onReply = resolve; onFail = reject })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let buffered = ''
  let replied = false
  const timer = setTimeout(() => socket.destroy(new Error(`server pid ${server.pid} did not answer within ${connectTimeoutMs} ms`)), connectTimeoutMs)
  socket.setEncoding('utf8')
  socket.once('connect', () => {
    if (command !== 'status') clearTimeout(timer)
    socket.write(JSON.stringify({ token: server.token, command }) + '\n')
  })
  socket.on('data', (chunk: string) => {
    buffered += chunk
    const nl = buffered.indexOf('\n')
    if (nl === -1 || replied) return
    replied = true
    clearTimeout(timer)
    try {
      onReply(JSON.parse(buffered.slice(0, nl)) as ControlReply)
    } catch {
      onFail(new ControlClientError(`server pid ${server.pid} sent a reply that is not JSON`, 1))
    }
  })
  socket.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer)
    if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') {
      onFail(new ControlClientError(`server pid ${server.pid} is not answering on ${server.socket} (stopped or stopping)`, EXIT_NOT_RUNNING))
    } else if (err.code === 'EACCES') {
      onFail(new ControlClientError(`permission denied on ${server.socket}: only the server's user and root may use it`, 1))
    } else {
      onFail(new ControlClientError(`control socket ${server.socket}: ${err.message}`, 1))
    }
  })
  socket.once('close', () => {
    clearTimeout(timer)
    if (!replied) onFail(new ControlClientError(`server pid ${server.pid} closed the control connection without answering`, 1))
  })
  return { reply, closed }
}
