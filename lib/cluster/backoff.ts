/**
 * Crash-restart delays. Plain `cluster.on('exit', fork)` respawns forever (pitfall 9); PM2 and
 * systemd space restarts out. Delays double from `baseMs` up to `capMs`; a worker that stayed
 * up `stableMs` proves the fault was transient, so the next crash starts from `baseMs` again.
 */
export interface BackoffOptions { baseMs: number, capMs: number, stableMs: number }

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 100, capMs: 10_000, stableMs: 30_000 }

export class RestartBackoff {
  private failures = 0
  constructor (private readonly options: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Delay before replacing a worker that crashed after `uptimeMs`. */
  next (uptimeMs: number): number {
    if (uptimeMs >= this.options.stableMs) this.failures = 0
    const delay = Math.min(this.options.capMs, this.options.baseMs * 2 ** this.failures)
    this.failures++
    return delay
  }
}
