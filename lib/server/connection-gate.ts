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
 * What the limit protects is the work being done: slots are for complete requests. While others
 * wait, admitted connections that have not delivered a complete request (slowloris, slow body, a
 * silent socket) and then idle keep-alive ones are closed to make room (eviction.ts); a connection
 * whose request is being handled is never cut, so when the server is merely busy, newcomers wait.
 * Time spent waiting counts against headers-timeout: a connection still queued after it is closed
 * with a 408, as node:http does for a request head that takes too long.
 *
 * The gate sees sockets through the server's 'connection' event, which fires the same way for
 * sockets the primary hands to a cluster worker, so the limit is per process in cluster mode too.
 */
import type { Socket } from 'node:net'
import { chooseEvictions, GRACE_MS } from './eviction'
import { REQUEST_TIMEOUT_RESPONSE, type RequestStage } from './request-stage'
import { acceptedAt, stampAccepted, stampAdmitted } from './socket-clock'

export interface GateLog {
  warn (msg: string): void
  info (msg: string): void
}

export interface GateOptions {
  limit: number
  /** Hands a socket to the HTTP server (and resumes it). */
  serve: (socket: Socket) => void
  log: GateLog
  /** A connection still waiting this long after it was accepted is answered 408 and closed. */
  headersTimeoutMs: number
  /** Where an admitted connection is in its request; decides who makes room under pressure. */
  stageOf: (socket: Socket) => RequestStage
}

/** Arrivals within this window are judged together (a waiting client waits at most this much longer). */
const RELIEF_BATCH_MS = 10

interface Episode { waited: number, evictedAwaiting: number, evictedIdle: number, timedOut: number }

export class ConnectionGate {
  /** Sockets handed to the HTTP server and not yet closed, in the order they were admitted. */
  readonly admitted = new Set<Socket>()
  private readonly queue: Socket[] = []
  private queueHead = 0
  private episode: Episode | undefined
  private opening = false
  private draining = false
  private idleWaiters: Array<() => void> = []
  private reliefScheduled = false
  private lastRelief = -Infinity
  private reliefTimer: NodeJS.Timeout | undefined

  constructor (private readonly options: GateOptions) {}

  get queued (): number { return this.queue.length - this.queueHead }

  /** 'connection' listener: every accepted socket arrives here, paused. */
  readonly onConnection = (socket: Socket): void => {
    stampAccepted(socket)
    if (this.admitted.size < this.options.limit || this.draining) {
      this.admit(socket)
      return
    }
    this.queue.push(socket)
    if (this.episode === undefined) {
      // Once per episode, not per connection: a saturated server must not flood its own log.
      this.episode = { waited: 0, evictedAwaiting: 0, evictedIdle: 0, timedOut: 0 }
      this.options.log.warn(`connection limit ${this.options.limit} reached; new connections wait until one closes, and connections without a complete request make room first (raise connection-limit or add workers)`)
    }
    this.episode.waited++
    this.scheduleRelief()
  }

  private admit (socket: Socket): void {
    if (socket.destroyed) return
    stampAdmitted(socket)
    this.admitted.add(socket)
    socket.once('close', () => this.release(socket))
    this.options.serve(socket)
  }

  private release (socket: Socket): void {
    this.admitted.delete(socket)
    this.admitNext()
    // The episode ends when a slot stays free with nobody waiting: under attack the queue empties
    // many times a second while the gate stays full, and that is still one episode (one log line).
    if (this.queued === 0 && this.admitted.size < this.options.limit) this.endEpisode()
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
      while ((this.admitted.size < this.options.limit || this.draining) && this.queued > 0) {
        this.admit(this.shift())
      }
    } finally {
      this.opening = false
    }
    if (this.queued === 0) this.stopRelief()
  }

  private shift (): Socket {
    const next = this.queue[this.queueHead]
    this.queue[this.queueHead++] = undefined as unknown as Socket
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead)
      this.queueHead = 0
    }
    return next
  }

  private stopRelief (): void {
    if (this.reliefTimer !== undefined) clearInterval(this.reliefTimer)
    this.reliefTimer = undefined
  }

  private endEpisode (): void {
    const e = this.episode
    if (e === undefined) return
    this.episode = undefined
    const closed = [
      e.evictedAwaiting > 0 ? `${e.evictedAwaiting} closed before sending a complete request` : '',
      e.evictedIdle > 0 ? `${e.evictedIdle} idle keep-alive closed` : '',
      e.timedOut > 0 ? `${e.timedOut} timed out waiting (headers-timeout)` : ''
    ].filter(Boolean).join(', ')
    this.options.log.info(`connection queue empty again; ${e.waited} connection(s) waited for a free slot${closed === '' ? '' : `; ${closed}`}`)
  }

  /**
   * Batches arrivals (at most one relief per RELIEF_BATCH_MS: each looks at every admitted
   * connection), then re-checks every GRACE_MS while some wait.
   */
  private scheduleRelief (): void {
    if (!this.reliefScheduled) {
      this.reliefScheduled = true
      const wait = Math.max(0, this.lastRelief + RELIEF_BATCH_MS - performance.now())
      setTimeout(() => {
        this.reliefScheduled = false
        this.relieve()
      }, wait)
    }
    if (this.reliefTimer === undefined) {
      this.reliefTimer = setInterval(() => this.relieve(), GRACE_MS)
      this.reliefTimer.unref()
    }
  }

  /** Closes waiting connections past headers-timeout, then makes room for the rest. */
  private relieve (): void {
    if (this.draining || this.queued === 0) return
    const now = performance.now()
    this.lastRelief = now
    this.expireWaiting(now)
    if (this.queued === 0) {
      this.stopRelief()
      return
    }
    const { victims } = chooseEvictions(this.admitted, this.queued, now, this.options.stageOf)
    for (const socket of victims) {
      const stage = this.options.stageOf(socket)
      if (this.episode !== undefined) {
        if (stage === 'between-requests') this.episode.evictedIdle++
        else this.episode.evictedAwaiting++
      }
      socket.destroy()
    }
  }

  private expireWaiting (now: number): void {
    const deadline = now - this.options.headersTimeoutMs
    while (this.queued > 0) {
      const head = this.queue[this.queueHead]
      if (!head.destroyed && (acceptedAt(head) ?? now) > deadline) break
      this.shift()
      if (head.destroyed) continue
      if (this.episode !== undefined) this.episode.timedOut++
      head.end(REQUEST_TIMEOUT_RESPONSE)
      head.destroy()
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
    this.stopRelief()
    for (const s of [...this.admitted]) s.destroy()
  }
}
