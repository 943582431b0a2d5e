/**
 * The send budget: response bytes waiting in this process for slow clients stay under a
 * per-process bound (plan/send-budget.ts derives it from the memory budget: 25 MB for a 200 MB worker).
 *
 * A response handed to the socket whole stays in user space until the client reads it — outside
 * the V8 heap cap for strings (libuv keeps a malloc'd copy) — so a slow-read attack that requests
 * a large response on thousands of connections and reads a few bytes a second grows the process
 * without bound (issue 9: 3.1 GB for a 1 MB route). Every CHECK_INTERVAL_MS the bytes held for all
 * connections are added up; over the budget, the connections that would take longest to drain at
 * the rate their client has been reading are closed until the total fits. A connection whose
 * client takes its bytes within QUICK_DRAIN_MS is never closed for the budget: those bytes are
 * about to be gone, and a large response to a fast client is legitimate. Stream large bodies
 * (reply.send(stream)): a stream waits for the client instead of filling memory.
 *
 * While over budget (until the total is back under half of it), a pipelined request — one sent
 * before the response to the previous one on its connection is out — is answered 503 without
 * running the app (http-server.ts): HTTP/1.1 answers in order, so its response could only wait in
 * memory behind one the client is not reading (slowhttptest -X pipelines 3 requests per connection).
 */
import type { Socket } from 'node:net'
import { Periodic } from './periodic'
import type { GateLog } from './connection-gate'
import { sentBytes, unsentBytes } from './socket-writes'

export const CHECK_INTERVAL_MS = 100
/** Unsent bytes that the client takes within this long are not a memory problem. */
export const QUICK_DRAIN_MS = 1000

const kWaiting = Symbol('prodserver.sendWaiting')

/** Since when a connection has had unsent bytes, and how much the kernel had taken then. */
interface Waiting { sent: number, since: number }

type Tracked = Socket & { [kWaiting]?: Waiting }

interface Candidate { socket: Socket, unsent: number, drainMs: number }

const MB = 1024 * 1024

export class SendBudget {
  /** Connections closed in the current over-budget episode; undefined when under budget. */
  private episode: { closed: number } | undefined

  private readonly periodic: Periodic

  constructor (
    private readonly sockets: ReadonlySet<Socket>,
    private readonly budgetBytes: number,
    private readonly log: GateLog,
    /** Told when an over-budget episode starts (true) and ends (false). */
    private readonly onPressure: (over: boolean) => void = () => {},
    intervalMs = CHECK_INTERVAL_MS
  ) {
    this.periodic = new Periodic(() => this.check(), intervalMs)
  }

  start (): void { this.periodic.start() }

  stop (): void { this.periodic.stop() }

  /** Closes the slowest readers while the bytes held exceed the budget. Returns how many. */
  check (now = performance.now()): number {
    let total = 0
    const candidates: Candidate[] = []
    for (const socket of this.sockets as ReadonlySet<Tracked>) {
      if (socket.destroyed) continue
      const unsent = unsentBytes(socket)
      if (unsent === 0) {
        socket[kWaiting] = undefined
        continue
      }
      total += unsent
      const sent = sentBytes(socket)
      const waiting = socket[kWaiting]
      if (waiting === undefined) {
        socket[kWaiting] = { sent, since: now }
        continue // not measured yet: judged at the next check
      }
      const elapsed = now - waiting.since
      const rate = (sent - waiting.sent) / elapsed // bytes per ms since it started waiting
      const drainMs = rate > 0 ? unsent / rate : Infinity
      if (drainMs > QUICK_DRAIN_MS) candidates.push({ socket, unsent, drainMs })
    }
    if (total <= this.budgetBytes) {
      // Hysteresis: under a sustained attack the total hovers at the budget; that is one episode.
      if (this.episode !== undefined && total <= this.budgetBytes / 2) this.endEpisode(total)
      return 0
    }
    if (this.episode === undefined) {
      this.episode = { closed: 0 }
      this.onPressure(true)
      this.log.warn(`response bytes waiting for slow clients reached ${(total / MB).toFixed(0)} MB, over the send budget of ${(this.budgetBytes / MB).toFixed(0)} MB: closing the connections that would take longest to drain`)
    }
    candidates.sort((a, b) => b.drainMs - a.drainMs || b.unsent - a.unsent)
    let closed = 0
    for (const c of candidates) {
      if (total <= this.budgetBytes) break
      c.socket.destroy()
      total -= c.unsent
      closed++
    }
    this.episode.closed += closed
    return closed
  }

  private endEpisode (total: number): void {
    const closed = this.episode?.closed ?? 0
    this.episode = undefined
    this.onPressure(false)
    this.log.info(`response bytes waiting for slow clients back to ${(total / MB).toFixed(0)} MB; ${closed} slow connection(s) closed to stay within the send budget`)
  }
}
