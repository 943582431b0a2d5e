/**
 * channel-timeout for connections that never sent a byte, and headers-timeout counted from accept.
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
 * The idle clock starts when the gate admits the socket: time spent waiting for a slot is ours, not
 * the client's idleness. The request-head clock is different: node:http starts it at admission,
 * but a connection that waited at the gate has been sending (or not) since it was accepted, so a
 * first request head still incomplete headers-timeout after accept gets node:http's 408 here.
 */
import type { Socket } from 'node:net'
import { Periodic } from './periodic'
import { REQUEST_TIMEOUT_RESPONSE, requestStage } from './request-stage'
import { acceptedAt, admittedAt } from './socket-clock'

export class IdleSweeper {
  private readonly periodic: Periodic

  constructor (
    private readonly sockets: ReadonlySet<Socket>,
    private readonly channelTimeoutMs: number,
    private readonly headersTimeoutMs: number,
    intervalMs: number
  ) {
    this.periodic = new Periodic(() => this.sweep(), intervalMs)
  }

  start (): void { this.periodic.start() }

  stop (): void { this.periodic.stop() }

  /** Closes admitted sockets silent since admission, or without a first request head in time. Returns how many. */
  sweep (now = performance.now()): number {
    const idleDeadline = now - this.channelTimeoutMs
    const headDeadline = now - this.headersTimeoutMs
    let closed = 0
    for (const socket of this.sockets) {
      if (socket.destroyed) continue
      if (socket.bytesRead === 0) {
        const at = admittedAt(socket)
        if (at !== undefined && at <= idleDeadline) {
          socket.destroy()
          closed++
        }
        continue
      }
      const accepted = acceptedAt(socket)
      if (accepted !== undefined && accepted <= headDeadline && requestStage(socket) === 'before-request') {
        socket.end(REQUEST_TIMEOUT_RESPONSE)
        socket.destroy()
        closed++
      }
    }
    return closed
  }
}
