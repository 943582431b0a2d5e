/**
 * Counters and histograms of workers that have exited, kept by the primary and added to every
 * scrape.
 *
 * Why: the metrics port sums the workers alive at scrape time. Without this, a worker that crashes,
 * is recycled (max-requests) or replaced by a reload takes its requests with it and the summed
 * counters go DOWN, which Prometheus reads as a counter reset: rate() jumps, increase() counts the
 * whole remaining total again. With it, a worker's last numbers stay in the sums: everything up to
 * its final snapshot (sent after a graceful drain) or, after a crash, up to the last scrape.
 *
 * Gauges are not kept (they describe a process that is gone), nor anything prom-client does not
 * combine by summing.
 */
import type { MetricFamily, MetricSample, MetricsJSON } from './types'

/** Sample key → value, for one worker. */
export type Baseline = Map<string, number>

interface RetiredFamily {
  meta: Omit<MetricFamily, 'values'>
  samples: Map<string, MetricSample>
}

function carried (family: MetricFamily): boolean {
  return (family.type === 'counter' || family.type === 'histogram') && (family.aggregator ?? 'sum') === 'sum'
}

function sampleKey (family: MetricFamily, sample: MetricSample): string {
  const labels = Object.keys(sample.labels).sort().map((k) => `${k}=${String(sample.labels[k])}`).join(',')
  return `${sample.metricName ?? family.name}{${labels}}`
}

export class RetiredCounters {
  private readonly families = new Map<string, RetiredFamily>()

  /**
   * Adds what `metrics` counted beyond `baseline` (what was already added for the same worker) and
   * returns the new baseline. Never subtracts: an older snapshot arriving late adds nothing.
   */
  add (metrics: MetricsJSON, baseline: Baseline = new Map()): Baseline {
    const next: Baseline = new Map(baseline)
    for (const family of metrics) {
      if (!carried(family)) continue
      let retired = this.families.get(family.name)
      if (retired === undefined) {
        const { values: _values, ...meta } = family
        retired = { meta, samples: new Map() }
        this.families.set(family.name, retired)
      }
      for (const sample of family.values) {
        const key = sampleKey(family, sample)
        const before = baseline.get(key) ?? 0
        if (!(sample.value > before)) continue
        next.set(key, sample.value)
        const kept = retired.samples.get(key)
        if (kept === undefined) retired.samples.set(key, { ...sample, labels: { ...sample.labels }, value: sample.value - before })
        else kept.value += sample.value - before
      }
    }
    return next
  }

  toJSON (): MetricsJSON {
    return [...this.families.values()].map(({ meta, samples }) => ({ ...meta, values: [...samples.values()] }))
  }
}
