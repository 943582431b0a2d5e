/**
 * The control socket of a running server (the primary, or the single process): answers
 * `prodserver status`, `reload` and `stop`. One JSON line in, one JSON line out.
 *
 * - Reachable by the server's user and root only: 0700 directory, 0600 socket and info file
 *   (dir.ts), and every request must carry the token from the info file.
 * - Never in the way of serving: a request line is bounded, a client has a few seconds to send
 *   it, and at most a handful of control connections are open at once.
 * - Gone with the process: files removed on close and, synchronously, at process exit; files left
 *   by a server that was SIGKILLed are removed by the next server in the same directory and
 *   ignored by clients meanwhile (their pid is not alive).
 */
import fs from 'node:fs'
import net from 'node:net'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { infoPath, preparePrivateDir, removeStaleEntries, rmIfThere, socketPath } from './dir'
import { CONTROL_COMMANDS, MAX_REQUEST_BYTES, type ControlReply, type ControlRequest, type ReloadResult, type ServerInfo, type StatusReport } from './protocol'

/** What `status` is told about the server itself (the info file without its secret). */
export type PublicInfo = Omit<ServerInfo, 'socket' | 'token'>

export interface ControlHandlers {
  status (info: PublicInfo): StatusReport
  /** Resolves when the reload is done or aborted; rejects (with a message for the user) when refused. */
  reload (): Promise<ReloadResult>
  /** Starts a graceful stop; the process exits when it is done, within deadlineMs. */
  stop (): { deadlineMs: number }
}

export interface ControlLog {
  info (obj: object, msg: string): void
  warn (msg: string): void
}

/** A client that connected must send its request this fast. */
const REQUEST_TIMEOUT_MS = 5000
const MAX_CONNECTIONS = 16

export class ControlServer {
  /** Control servers opened by this process so far (file names stay unique: dir.ts). */
  private static opened = 0
  private readonly socket: string
  private readonly infoFile: string
  private readonly token = randomBytes(32).toString('base64url')
  private readonly server: net.Server
  private readonly removeAtExit = (): void => this.removeFiles()
  private info: ServerInfo

  private constructor (readonly dir: string, info: Omit<ServerInfo, 'pid' | 'socket' | 'token'>, private readonly handlers: ControlHandlers, private readonly log: ControlLog) {
    const id = ControlServer.opened++ === 0 ? String(process.pid) : `${process.pid}-${ControlServer.opened - 1}`
    this.socket = socketPath(dir, id)
    this.infoFile = infoPath(dir, id)
    this.info = { ...info, pid: process.pid, socket: this.socket, token: this.token }
    this.server = net.createServer((conn) => this.serve(conn))
    this.server.maxConnections = MAX_CONNECTIONS
  }

  static async start (dir: string, info: Omit<ServerInfo, 'pid' | 'socket' | 'token'>, handlers: ControlHandlers, log: ControlLog): Promise<ControlServer> {
    preparePrivateDir(dir, (msg) => log.warn(msg))
    removeStaleEntries(dir)
    const control = new ControlServer(dir, info, handlers, log)
    await control.listen()
    return control
  }

  /** Updates what the info file says (e.g. the real addresses once the first worker listens). */
  publish (update: Partial<Pick<ServerInfo, 'addresses'>>): void {
    this.info = { ...this.info, ...update }
    this.writeInfo()
  }

  async close (): Promise<void> {
    process.removeListener('exit', this.removeAtExit)
    this.removeFiles()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async listen (): Promise<void> {
    rmIfThere(this.socket)
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.socket, () => { this.server.removeListener('error', reject); resolve() })
    })
    // The directory already keeps others out; the socket's own mode says the same thing.
    fs.chmodSync(this.socket, 0o600)
    this.server.unref()
    this.writeInfo()
    process.on('exit', this.removeAtExit)
    this.log.info({ socket: this.socket }, 'control socket listening')
  }

  /** Atomically: a reader sees the old file or the new one, never half of one. */
  private writeInfo (): void {
    const tmp = `${this.infoFile}.${randomBytes(6).toString('hex')}.tmp`
    fs.writeFileSync(tmp, JSON.stringify(this.info) + '\n', { mode: 0o600, flag: 'wx' })
    fs.renameSync(tmp, this.infoFile)
  }

  private removeFiles (): void {
    rmIfThere(this.infoFile)
    rmIfThere(this.socket)
  }

  private serve (conn: net.Socket): void {
    let buffered = ''
    conn.setEncoding('utf8')
    conn.setTimeout(REQUEST_TIMEOUT_MS, () => conn.destroy())
    conn.on('error', () => conn.destroy())
    const onData = (chunk: string): void => {
      buffered += chunk
      const nl = buffered.indexOf('\n')
      if (nl === -1) {
        if (buffered.length > MAX_REQUEST_BYTES) this.reply(conn, { ok: false, error: 'request too long' })
        return
      }
      conn.removeListener('data', onData)
      conn.setTimeout(0)
      void this.answer(conn, buffered.slice(0, nl))
    }
    conn.on('data', onData)
  }

  private async answer (conn: net.Socket, line: string): Promise<void> {
    let request: Partial<ControlRequest>
    try {
      request = JSON.parse(line) as Partial<ControlRequest>
    } catch {
      return this.reply(conn, { ok: false, error: 'not a JSON request' })
    }
    if (!this.authorized(request.token)) return this.reply(conn, { ok: false, error: 'not authorized (the token does not match this server\'s info file)' })
    const command = request.command
    if (command === undefined || !CONTROL_COMMANDS.includes(command)) {
      return this.reply(conn, { ok: false, error: `unknown command ${JSON.stringify(command)}; accepted: ${CONTROL_COMMANDS.join(', ')}` })
    }
    this.log.info({ command }, 'control command')
    try {
      switch (command) {
        case 'status': {
          const { token, socket, ...info } = this.info
          return this.reply(conn, { ok: true, status: this.handlers.status(info) })
        }
        case 'reload': return this.reply(conn, { ok: true, reload: await this.handlers.reload() })
        case 'stop': {
          const { deadlineMs } = this.handlers.stop()
          // Kept open: the client learns that the server is gone when this connection closes.
          conn.write(JSON.stringify({ ok: true, stopping: { pid: process.pid, deadlineMs } } satisfies ControlReply) + '\n')
          return
        }
      }
    } catch (err) {
      return this.reply(conn, { ok: false, error: err instanceof Error ? err.message : String(err) })
    }
  }

  private authorized (token: unknown): boolean {
    if (typeof token !== 'string') return false
    const given = Buffer.from(token)
    const expected = Buffer.from(this.token)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  private reply (conn: net.Socket, reply: ControlReply): void {
    if (!conn.destroyed) conn.end(JSON.stringify(reply) + '\n')
  }
}
