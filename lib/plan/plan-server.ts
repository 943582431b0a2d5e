/**
 * planServer(): pure — knobs and resources in, the whole resolved plan out.
 * (Foundation stub: the planning work replaces it.)
 */
import { resolveKnobs, isResolved, type ResolvedKnobs } from '../config/resolve'
import type { KnobOptions } from '../config/knobs'
import type { Plan, Resources } from './types'
import { readResources } from '../system/resources'

export function planServer (knobs: KnobOptions | ResolvedKnobs = {}, resources: Resources = readResources()): Plan {
  const r = isResolved(knobs) ? knobs : resolveKnobs({ options: knobs as Record<string, unknown> })
  const v = r.values
  const channel = v['channel-timeout']
  return {
    mode: 'single',
    workers: 1,
    threads: 4,
    resources,
    formula: { cpuBased: 0, ramBased: 0, optimal: 1, steps: [] },
    heapMb: v['worker-memory-mb'],
    server: {
      channelTimeoutMs: channel,
      cleanupIntervalMs: v['cleanup-interval'],
      connectionLimit: v['connection-limit'],
      keepAliveTimeoutMs: v['keep-alive-timeout'] ?? channel,
      headersTimeoutMs: v['headers-timeout'],
      requestTimeoutMs: v['request-timeout'],
      urlScheme: v['url-scheme'],
      exposeTracebacks: v['expose-tracebacks']
    },
    listen: { kind: 'tcp', addresses: v.listen ?? [{ host: v.host, port: v.port }], backlog: v.backlog },
    supervisor: {
      workerTimeoutMs: v['worker-timeout'],
      gracefulTimeoutMs: v['graceful-timeout'],
      maxRequests: v['max-requests'],
      maxRequestsJitter: v['max-requests-jitter']
    },
    sessions: { requested: v['session-store'], expected: 'file', reason: 'stub' },
    sources: { ...r.sources },
    notApplicable: {},
    warnings: [...r.warnings]
  }
}
