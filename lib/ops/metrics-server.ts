/**
 * The metrics port: Prometheus text on its own listener, apart from the app's port (metrics are
 * not public by default, and a saturated app port must not hide them). `gather` returns the JSON
 * of every process to combine — one in single mode, the primary plus each worker in cluster mode
 * — and prom-client's AggregatorRegistry.aggregate() sums them (or averages, per metric).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { AggregatorRegistry, Registry } from 'prom-client'
import type { FastifyBaseLogger } from 'fastify'
import type { MetricsJSON } from './types'

export interface MetricsEndpoint {
  /** e.g. http://127.0.0.1:9100/metrics */
  url: string
  close (): Promise<void>
}

export class MetricsPortError extends Error {
  readonly exitCode = 2
}

export async function aggregateMetrics (sets: MetricsJSON[]): Promise<string> {
  return await AggregatorRegistry.aggregate(sets).metrics()
}

export async function startMetricsServer (host: string, port: number, gather: () => Promise<MetricsJSON[]>, log: Pick<FastifyBaseLogger, 'info' | 'error'>): Promise<MetricsEndpoint> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('metrics are at GET /metrics\n')
      return
    }
    gather().then(aggregateMetrics).then((text) => {
      res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, (err: unknown) => {
      log.error({ err }, 'metrics: scrape failed')
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('metrics unavailable\n')
    })
  })
  // A scraper's keep-alive socket must not hold a shutdown open.
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new MetricsPortError(`metrics-port ${port} on metrics-host ${host} cannot be used: ${err.code ?? err.message}; accepted: a free port on an interface of this machine`))
    })
    server.listen({ host, port }, () => resolve())
  })
  const address = server.address() as AddressInfo
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/metrics`
  log.info({ url }, 'metrics listening')
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}
