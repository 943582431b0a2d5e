/**
 * prom-client's JSON form of a registry (`registry.getMetricsAsJSON()`): what workers send the
 * primary and what AggregatorRegistry.aggregate() takes. prom-client's own typings of it are loose
 * (an enum for `type`, a `collect` that is not there), so the shape is spelled out here.
 */
export interface MetricSample {
  value: number
  labels: Record<string, string | number>
  /** Histograms: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  metricName?: string
}

export interface MetricFamily {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary'
  values: MetricSample[]
  /** How the primary combines workers: sum (default), average, min, max, first, omit. */
  aggregator: string
}

export type MetricsJSON = MetricFamily[]

/** The `id` of the snapshot a worker sends by itself after its drain, just before it exits. */
export const FINAL_SNAPSHOT_ID = 0
