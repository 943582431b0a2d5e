/**
 * channel-timeout for connections that never sent a byte.
 *
 * Waitress closes a channel idle for channel_timeout, checked every cleanup_interval, and never one
 * with a request in flight (§1.2, waitress#267). On Node the idle phases are covered as follows:
 *  - between requests: Node's per-socket keep-alive timer (server.keepAliveTimeout, which defaults
 *    to channel-timeout in the plan) — it is disarmed while a request runs;
 *  - partial request: headers-timeout / request-timeout (408), swept every connectionsCheckingInterval;
 *  - connected but silent: NOTHING — Node 20 leaves such a socket open forever (research §3.1,
 *    "observed gap"). This sweeper closes those.
 * We do not use server.timeout / Fastify connectionTimeout: it also kills slow in-flight handlers
 * (§3.1, observed). The sweep reads `bytesRead` (public, counted by the handle even when the HTTP
 * parser consumes the stream natively), so the request path does no bookkeeping at all.
 * The clock starts when the gate admits the socket: time spent waiting for a slot is ours, not the
 * client's idleness.
 */
import type { Socket } from 'node:net'

const kAdmittedAt = Symbol('prodserver.admittedAt')

type Stamped = Socket & { [kAdmittedAt]?: number }

export function stampAdmitted (socket: Socket, now = Date.now()): void {
  (socket as Stamped)[kAdmittedAt] = now
}

export class IdleSweeper {
  private timer: NodeJS.Timeout | undefined

  constructor (
    private readonly sockets: ReadonlySet<Socket>,
    private readonly channelTimeoutMs: number,
    private readonly intervalMs: number
  ) {}

  start (): void {
    this.timer = setInterval(() => this.sweep(), this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Closes admitted sockets that have been silent since they were admitted. Returns how many. */
  sweep (now = Date.now()): number {
    const deadline = now - this.channelTimeoutMs
    let closed = 0
    for (const socket of this.sockets) {
      const at = (socket as Stamped)[kAdmittedAt]
      if (at !== undefined && at <= deadline && socket.bytesRead === 0 && !socket.destroyed) {
        socket.destroy()
        closed++
      }
    }
    return closed
  }
}
