/**
 * Requests and latency by method and status class, recorded by one onResponse hook that only
 * increments numbers in preallocated arrays (prom-client's observe() hashes a labels object and
 * allocates a closure per call). The samples are written out in prom-client's JSON form at scrape
 * time, so they aggregate across workers like every other metric.
 */
import type { MetricFamily, MetricSample } from './types'

/** Seconds; prom-client's default buckets. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'other']
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx']
const OTHER = METHODS.length - 1

interface Slot { buckets: Float64Array, sum: number, count: number }

export class HttpMetrics {
  private readonly methodIndex = new Map(METHODS.slice(0, OTHER).map((m, i) => [m, i]))
  private readonly slots: Array<Slot | undefined> = new Array(METHODS.length * CLASSES.length)

  /** statusCode as sent; ms = Fastify's reply.elapsedTime. */
  observe (method: string, statusCode: number, ms: number): void {
    const m = this.methodIndex.get(method) ?? OTHER
    let c = ((statusCode / 100) | 0) - 1
    if (c < 0 || c > 4) c = 4
    const i = m * CLASSES.length + c
    let slot = this.slots[i]
    if (slot === undefined) {
      slot = { buckets: new Float64Array(LATENCY_BUCKETS.length), sum: 0, count: 0 }
      this.slots[i] = slot
    }
    const seconds = ms / 1000
    slot.sum += seconds
    slot.count++
    for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
      if (seconds <= LATENCY_BUCKETS[b]) { slot.buckets[b]++; break }
    }
  }

  toJSON (): MetricFamily[] {
    const requests: MetricSample[] = []
    const latency: MetricSample[] = []
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]
      if (slot === undefined) continue
      const labels = { method: METHODS[Math.floor(i / CLASSES.length)], status_class: CLASSES[i % CLASSES.length] }
      requests.push({ labels, value: slot.count })
      let cumulative = 0
      for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
        cumulative += slot.buckets[b]
        latency.push({ labels: { ...labels, le: LATENCY_BUCKETS[b] }, value: cumulative, metricName: 'prodserver_http_request_duration_seconds_bucket' })
      }
      latency.push({ labels: { ...labels, le: '+Inf' }, value: slot.count, metricName: 'prodserver_http_request_duration_seconds_bucket' })
      latency.push({ labels, value: slot.sum, metricName: 'prodserver_http_request_duration_seconds_sum' })
      latency.push({ labels, value: slot.count, metricName: 'prodserver_http_request_duration_seconds_count' })
    }
    return [
      { name: 'prodserver_http_requests_total', help: 'HTTP requests answered, by method and status class (health and readiness probes excluded).', type: 'counter', values: requests, aggregator: 'sum' },
      { name: 'prodserver_http_request_duration_seconds', help: 'Time from request start to response end, by method and status class.', type: 'histogram', values: latency, aggregator: 'sum' }
    ]
  }
}
