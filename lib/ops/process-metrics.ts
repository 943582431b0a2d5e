/**
 * The metrics of one serving process (a worker, or the single process): requests and latency,
 * connections at the gate, session store operations, and prom-client's default Node metrics
 * (event-loop delay, heap, GC, CPU, memory, file descriptors). Created only when metrics-port is
 * set; otherwise none of this exists and no request does any metric work.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { HttpMetrics } from './http-metrics'
import { observeStoreOps } from './store-ops'
import type { MetricsJSON } from './types'

/** Seconds: store operations are expected in the sub-millisecond to timeout (1 s) range. */
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export class ProcessMetrics {
  readonly http = new HttpMetrics()
  private readonly registry = new Registry()

  constructor (connections: () => { active: number, queued: number }) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'prodserver_connections',
      help: 'Connections being served (active) and waiting at the connection limit (queued).',
      labelNames: ['state'],
      registers,
      collect () {
        const c = connections()
        this.set({ state: 'active' }, c.active)
        this.set({ state: 'queued' }, c.queued)
      }
    })
    const duration = new Histogram({
      name: 'prodserver_session_store_operation_duration_seconds',
      help: 'Session store operations as the request waits for them (bounded by the store timeout), by operation and store.',
      labelNames: ['op', 'store'],
      buckets: STORE_BUCKETS,
      registers
    })
    const errors = new Counter({
      name: 'prodserver_session_store_errors_total',
      help: 'Session store operations that failed or timed out (answered 503), by operation and store.',
      labelNames: ['op', 'store'],
      registers
    })
    observeStoreOps((store, op, seconds, ok) => {
      duration.observe({ op, store }, seconds)
      if (!ok) errors.inc({ op, store })
    })
  }

  async collect (): Promise<MetricsJSON> {
    const own = await this.registry.getMetricsAsJSON() as unknown as MetricsJSON
    return [...own, ...this.http.toJSON()]
  }

  close (): void {
    observeStoreOps(undefined)
  }
}
