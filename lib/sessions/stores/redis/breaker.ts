/**
 * A small circuit breaker for the Redis store.
 *
 * Why: when Redis is dead or frozen every session operation would otherwise wait its full timeout,
 * and @fastify/session calls `set` a second time on the error path (research §2.3 / L10), doubling
 * the wait; a dead Redis would also be hammered by every request (pitfall 2). When an operation
 * fails for availability reasons we fail fast until either the client reports `ready` again
 * (reconnected) or `cooldownMs` passes; then exactly one probe operation is let through
 * (half-open) while the others keep failing fast, and its outcome closes or re-opens the circuit.
 *
 * A failure does not open the circuit when Redis has answered another operation since the failed
 * one was sent: Redis is up, that one command was slow on its own (queued behind a big command of
 * another app, say), and failing everybody fast for a cool-down would turn one slow reply into a
 * second of 503s for every user.
 */
export type BreakerState = 'closed' | 'open' | 'half-open'

export class Breaker {
  private state: BreakerState = 'closed'
  private openedAt = 0
  private lastSuccessAt = Number.NEGATIVE_INFINITY

  constructor (private readonly cooldownMs: number, private readonly now: () => number = Date.now) {}

  get current (): BreakerState {
    return this.state
  }

  /** May an operation run now? In half-open the caller that gets `true` is the probe. */
  admit (): boolean {
    if (this.state === 'closed') return true
    if (this.state === 'open' && this.now() - this.openedAt >= this.cooldownMs) {
      this.state = 'half-open'
      return true
    }
    return false
  }

  /** The breaker's clock: pass its reading at the start of an operation to failure(). */
  time (): number {
    return this.now()
  }

  /** Redis answered. Returns true when this closed an open circuit (recovery). */
  success (): boolean {
    this.lastSuccessAt = this.now()
    if (this.state === 'closed') return false
    this.state = 'closed'
    return true
  }

  /**
   * An availability failure of an operation started at `startedAt` (this.time()). Returns true when
   * this opened a closed circuit (start of an outage).
   */
  failure (startedAt = Number.POSITIVE_INFINITY): boolean {
    if (this.state === 'closed' && this.lastSuccessAt > startedAt) return false
    const wasClosed = this.state === 'closed'
    this.state = 'open'
    this.openedAt = this.now()
    return wasClosed
  }
}
