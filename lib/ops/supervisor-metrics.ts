/**
 * The primary's part of the metrics: worker restarts by reason and workers by state, plus the
 * collection of every worker's metrics over the cluster IPC channel for one scrape.
 *
 * Why not AggregatorRegistry.clusterMetrics(): it asks every worker in cluster.workers and fails
 * the whole scrape after 5 s when one of them does not answer — a worker still booting (it has not
 * loaded prom-client yet), one that is blocked (the very moment metrics matter) or one that died
 * between the ask and the answer. Here only our own workers are asked, with our tagged messages
 * (so the app's own prom-client IPC traffic is left alone), a worker that exits stops being waited
 * for, and a scrape answers within SCRAPE_TIMEOUT_MS with what arrived, counting the rest.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import { FINAL_SNAPSHOT_ID, type MetricsJSON } from './types'
import { RetiredCounters, type Baseline } from './retired-counters'

export type RestartReason = 'crash' | 'timeout' | 'recycle' | 'reload' | 'scale' | 'memory'
export const RESTART_REASONS: RestartReason[] = ['crash', 'timeout', 'recycle', 'reload', 'scale', 'memory']

/** Below Prometheus's default scrape timeout (10 s). */
const SCRAPE_TIMEOUT_MS = 3000
/** Exited workers whose late final snapshot is still accepted (the oldest is forgotten first). */
const DEPARTED_KEPT = 64

export interface AskableWorker {
  pid: number
  /** Sends the metrics request; false when the IPC channel is gone. */
  ask (id: number): boolean
}

interface Pending {
  waiting: Set<number>
  answers: MetricsJSON[]
  done: () => void
}

export class SupervisorMetrics {
  private readonly registry = new Registry()
  private readonly restarts: Counter
  private readonly missing: Gauge
  private readonly pending = new Map<number, Pending>()
  private nextId = FINAL_SNAPSHOT_ID + 1
  /** Each live worker's latest snapshot. */
  private readonly lastSeen = new Map<number, MetricsJSON>()
  private readonly retired = new RetiredCounters()
  /** Exited workers: what of theirs is already in `retired` (a final snapshot may arrive after the exit). */
  private readonly departed = new Map<number, Baseline>()

  constructor (workerStates: () => Record<string, number>) {
    const registers = [this.registry]
    this.restarts = new Counter({
      name: 'prodserver_worker_restarts_total',
      help: 'Workers replaced by the primary, by reason: crash, timeout (worker-timeout), recycle (max-requests), reload (SIGHUP), scale (SIGTTOU), memory (over its memory budget, or out of memory at its heap cap).',
      labelNames: ['reason'],
      registers
    })
    for (const reason of RESTART_REASONS) this.restarts.inc({ reason }, 0)
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'prodserver_workers',
      help: 'Worker processes by state (booting, ready, draining).',
      labelNames: ['state'],
      registers,
      collect () {
        for (const [state, n] of Object.entries(workerStates())) this.set({ state }, n)
      }
    })
    this.missing = new Gauge({
      name: 'prodserver_metrics_workers_missing',
      help: 'Workers that did not send their metrics in time for this scrape (their samples are absent from the sums).',
      registers
    })
  }

  workerExited (reason: RestartReason): void {
    this.restarts.inc({ reason })
  }

  /** One scrape: the primary's metrics, then every worker's that answered in time. */
  async gather (workers: AskableWorker[]): Promise<MetricsJSON[]> {
    const id = this.nextId++
    const answers: MetricsJSON[] = []
    const waiting = new Set<number>()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SCRAPE_TIMEOUT_MS)
      const done = (): void => { clearTimeout(timer); resolve() }
      this.pending.set(id, { waiting, answers, done })
      for (const w of workers) if (w.ask(id)) waiting.add(w.pid)
      if (waiting.size === 0) done()
    })
    this.pending.delete(id)
    this.missing.set(waiting.size)
    return [await this.registry.getMetricsAsJSON() as unknown as MetricsJSON, this.retired.toJSON(), ...answers]
  }

  /** A worker's snapshot: the answer to scrape `id`, or its final one (FINAL_SNAPSHOT_ID). */
  answer (pid: number, id: number, metrics: MetricsJSON): void {
    const baseline = this.departed.get(pid)
    if (baseline !== undefined) {
      // It has exited already: only what it counted since its last snapshot is new.
      this.departed.set(pid, this.retired.add(metrics, baseline))
      return
    }
    if (metrics.length > 0) this.lastSeen.set(pid, metrics)
    const p = this.pending.get(id)
    if (p === undefined || !p.waiting.delete(pid)) return
    p.answers.push(metrics)
    if (p.waiting.size === 0) p.done()
  }

  /** A worker exited: no scrape waits for it any more, and its counters stay in the sums. */
  gone (pid: number): void {
    for (const p of this.pending.values()) {
      if (p.waiting.delete(pid) && p.waiting.size === 0) p.done()
    }
    const last = this.lastSeen.get(pid)
    this.lastSeen.delete(pid)
    this.departed.set(pid, last === undefined ? new Map() : this.retired.add(last))
    if (this.departed.size > DEPARTED_KEPT) this.departed.delete(this.departed.keys().next().value as number)
  }
}
