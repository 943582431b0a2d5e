/**
 * connection-limit with Waitress semantics: connections beyond the limit WAIT, they are not reset.
 *
 * Node's `server.maxConnections` accepts and then closes over-limit sockets (clients see a reset),
 * and in cluster round-robin mode on Node ≤ 22 the primary re-distributes the refused handle in a
 * busy loop (research §4.3, pitfall 8). Waitress instead stops polling the listener so clients wait
 * in the accept queue (§1.3). Node has no public "pause accept", so we accept every socket PAUSED
 * (`pauseOnConnect`, nothing is read from it) and only hand it to the HTTP server when a slot is
 * free. A waiting socket costs one fd and no parsing; its bytes stay in the kernel.
 *
 * The gate sees sockets through the server's 'connection' event, which fires the same way for
 * sockets the primary hands to a cluster worker, so the limit is per process in cluster mode too.
 */
import type { Socket } from 'node:net'

export interface GateLog {
  warn (msg: string): void
  info (msg: string): void
}

export class ConnectionGate {
  /** Sockets handed to the HTTP server and not yet closed. */
  readonly admitted = new Set<Socket>()
  private readonly queue: Socket[] = []
  private queueHead = 0
  private saturated = false
  private waitedThisEpisode = 0
  private opening = false
  private draining = false
  private idleWaiters: Array<() => void> = []

  constructor (
    private readonly limit: number,
    /** Hands a socket to the HTTP server (and resumes it). */
    private readonly serve: (socket: Socket) => void,
    private readonly log: GateLog
  ) {}

  get queued (): number { return this.queue.length - this.queueHead }

  /** 'connection' listener: every accepted socket arrives here, paused. */
  readonly onConnection = (socket: Socket): void => {
    if (this.admitted.size < this.limit || this.draining) {
      this.admit(socket)
      return
    }
    this.queue.push(socket)
    this.waitedThisEpisode++
    if (!this.saturated) {
      // Once per episode, not per connection: a saturated server must not flood its own log.
      this.saturated = true
      this.log.warn(`connection limit ${this.limit} reached; new connections wait until one closes (raise connection-limit or add workers)`)
    }
  }

  private admit (socket: Socket): void {
    if (socket.destroyed) return
    this.admitted.add(socket)
    socket.once('close', () => this.release(socket))
    this.serve(socket)
  }

  private release (socket: Socket): void {
    this.admitted.delete(socket)
    this.admitNext()
    if (this.admitted.size === 0 && this.queued === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
  }

  private admitNext (): void {
    // Re-entrancy guard: admitting may synchronously close a socket (already reset by its client).
    if (this.opening) return
    this.opening = true
    try {
      while ((this.admitted.size < this.limit || this.draining) && this.queued > 0) {
        const next = this.queue[this.queueHead]
        this.queue[this.queueHead++] = undefined as unknown as Socket
        if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
          this.queue.splice(0, this.queueHead)
          this.queueHead = 0
        }
        this.admit(next)
      }
    } finally {
      this.opening = false
    }
    if (this.saturated && this.queued === 0) {
      this.saturated = false
      this.log.info(`connection queue empty again; ${this.waitedThisEpisode} connection(s) waited for a free slot`)
      this.waitedThisEpisode = 0
    }
  }

  /** Drain: the limit no longer applies, every waiting connection is served (with Connection: close). */
  openAll (): void {
    this.draining = true
    this.admitNext()
  }

  /** Resolves when no connection is admitted or waiting. */
  whenEmpty (): Promise<void> {
    if (this.admitted.size === 0 && this.queued === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Forced end of a drain. */
  destroyAll (): void {
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]?.destroy()
    this.queue.length = 0
    this.queueHead = 0
    for (const s of [...this.admitted]) s.destroy()
  }
}
