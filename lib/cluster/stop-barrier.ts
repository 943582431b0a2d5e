/**
 * On a stop, no worker starts closing connections before every worker's listener is closed.
 *
 * node:cluster's shared listener lives in the primary and closes only when the last worker has
 * closed its own. A worker that already answered `Connection: close` makes the proxy open new
 * connections while another worker still listens: they queue in the primary, and node:cluster
 * resets them when that last listener closes (measured behind nginx with two instances: resets
 * on 2 stops of 5, none with this barrier when nginx's pool covers its load). So each stopping
 * worker reports `listeners-closed` (after node:cluster's own close message on the same ordered
 * channel) and waits; once every worker told to stop has reported or exited, the primary answers
 * them all.
 */
import type { Worker } from 'node:cluster'
import type { PrimaryMessage } from './protocol'

export class StopBarrier {
  private readonly expected = new Set<Worker>()
  private readonly reported = new Set<Worker>()
  private released = false

  /** This worker was told to stop: the others wait for its report. */
  expect (worker: Worker): void {
    this.expected.add(worker)
  }

  report (worker: Worker): void {
    this.reported.add(worker)
    // A worker drained for another reason (a scale-down) got no answer to wait for; answer it now.
    if (!this.expected.has(worker) || this.released) answer(worker)
    this.check()
  }

  /** A worker exited: it closes nothing any more. */
  gone (worker: Worker): void {
    this.expected.delete(worker)
    this.check()
  }

  private check (): void {
    if (this.released || this.expected.size === 0) return
    for (const w of this.expected) if (!this.reported.has(w)) return
    this.released = true
    for (const w of this.expected) answer(w)
  }
}

function answer (worker: Worker): void {
  if (!worker.isConnected()) return
  try {
    worker.send({ prodserver: 1, type: 'listeners-closed' } satisfies PrimaryMessage)
  } catch {
    // IPC closing: the worker is on its way out.
  }
}
