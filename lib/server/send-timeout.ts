/**
 * channel-timeout for sending: a client that stops reading is closed.
 *
 * Waitress's channel_timeout counts a send as activity and closes a channel whose output made no
 * progress for that long (§1.2); node:http has nothing of the kind once a request is in flight
 * (server.timeout would also kill slow handlers, §3.1). So every cleanup-interval this sweep looks
 * at the connections with response bytes still in this process: one whose kernel has taken none of
 * them for channel-timeout is closed. A slow reader that keeps reading is not closed here — the
 * send budget (send-budget.ts) bounds what slow readers can hold.
 */
import type { Socket } from 'node:net'
import { Periodic } from './periodic'
import { sentBytes, unsentBytes } from './socket-writes'

const kSendProgress = Symbol('prodserver.sendProgress')

interface Progress { sent: number, since: number }

type Tracked = Socket & { [kSendProgress]?: Progress }

export class SendTimeout {
  private readonly periodic: Periodic

  constructor (
    private readonly sockets: ReadonlySet<Socket>,
    private readonly timeoutMs: number,
    intervalMs: number
  ) {
    this.periodic = new Periodic(() => this.sweep(), intervalMs)
  }

  start (): void { this.periodic.start() }

  stop (): void { this.periodic.stop() }

  /** Closes the connections whose unsent bytes made no progress for the timeout. Returns how many. */
  sweep (now = performance.now()): number {
    let closed = 0
    for (const socket of this.sockets as ReadonlySet<Tracked>) {
      if (socket.destroyed) continue
      if (unsentBytes(socket) === 0) {
        socket[kSendProgress] = undefined
        continue
      }
      const sent = sentBytes(socket)
      const seen = socket[kSendProgress]
      if (seen === undefined || seen.sent !== sent) {
        socket[kSendProgress] = { sent, since: now }
      } else if (now - seen.since >= this.timeoutMs) {
        socket.destroy()
        closed++
      }
    }
    return closed
  }
}
