/**
 * A check that runs every `intervalMs` while the server lives, without keeping the process alive
 * (the sweeps of Waitress's cleanup_interval and the send budget's checks).
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly run: () => unknown, private readonly intervalMs: number) {}

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(this.run, this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}
