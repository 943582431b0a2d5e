/**
 * A small circuit breaker for the Redis store.
 *
 * Why: when Redis is dead or frozen every session operation would otherwise wait its full timeout,
 * and @fastify/session calls `set` a second time on the error path (research §2.3 / L10), doubling
 * the wait; a dead Redis would also be hammered by every request (pitfall 2). After one operation
 * fails for availability reasons we fail fast until either the client reports `ready` again
 * (reconnected) or `cooldownMs` passes; then exactly one probe operation is let through
 * (half-open) while the others keep failing fast, and its outcome closes or re-opens the circuit.
 */
export type BreakerState = 'closed' | 'open' | 'half-open'

export class Breaker {
  private state: BreakerState = 'closed'
  private openedAt = 0

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

  /** Redis answered. Returns true when this closed an open circuit (recovery). */
  success (): boolean {
    if (this.state === 'closed') return false
    this.state = 'closed'
    return true
  }

  /** An availability failure. Returns true when this opened a closed circuit (start of an outage). */
  failure (): boolean {
    const wasClosed = this.state === 'closed'
    this.state = 'open'
    this.openedAt = this.now()
    return wasClosed
  }
}
