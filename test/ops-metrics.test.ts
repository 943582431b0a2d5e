/**
 * metrics-port: what an operator's Prometheus sees — one scrape for the whole server, every
 * worker's requests summed, latency histograms that add up, connections, worker restarts by
 * reason, session store operations, and Node's own process metrics.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import http from 'node:http'
import { spawnServer, freePort, get, eventually, clusterFlags, CLI, FIXTURES } from './helpers/process'
import { parsePrometheus, scrape, total, has, histogramProblems } from './fixtures/ops-metrics'

const APP = path.join(FIXTURES, 'ops-app.js')

function sessionDir (t: { teardown (fn: () => unknown): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-ops-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function post (port: number, urlPath: string): Promise<{ status: number, cookie?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cookie: res.headers['set-cookie']?.[0]?.split(';')[0] }))
    })
    req.on('error', reject)
    req.end()
  })
}

function getWithCookie (port: number, urlPath: string, cookie: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { cookie } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject)
  })
}

t.test('cluster of 2: one scrape sums every worker; restarts, connections, store operations and process metrics are there', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const p = spawnServer(t, [CLI, APP, ...clusterFlags(port, ['--workers', '2', '--metrics-port', String(metricsPort), '--health-path', '/healthz'])], {
    env: { SESSION_STORE: 'file', SESSION_DIR: sessionDir(t) }
  })
  const listening = await p.waitLine('metrics listening')
  t.equal(listening.url, `http://127.0.0.1:${metricsPort}/metrics`, 'the primary says where metrics are')
  await p.waitLine('all workers ready', 30_000)

  // 10 × 2xx and 4 × 404 on fresh connections (round-robin: both workers serve), 2 logins and
  // 2 reads of the session, and probes that must not be counted.
  const pids = new Set<number>()
  for (let i = 0; i < 10; i++) pids.add((await get(port, '/')).json.pid as number)
  t.equal(pids.size, 2, 'both workers served requests')
  for (let i = 0; i < 4; i++) t.equal((await get(port, '/missing')).status, 404)
  const login = await post(port, '/login')
  t.equal(login.status, 200)
  t.ok(login.cookie, 'a session cookie')
  t.equal((await post(port, '/login')).status, 200)
  for (let i = 0; i < 2; i++) t.match((await getWithCookie(port, '/me', login.cookie!)).body, /"user":"ada"/)
  for (let i = 0; i < 3; i++) t.equal((await get(port, '/healthz')).status, 200)

  const scraped = await eventually(async () => {
    const s = await scrape(metricsPort)
    const { samples } = parsePrometheus(s.text)
    return total(samples, 'prodserver_http_requests_total') === 18 ? { ...s, samples } : undefined
  }, 15_000, '18 requests counted')
  t.equal(scraped.status, 200)
  t.match(scraped.contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
  const { samples } = scraped
  t.equal(total(samples, 'prodserver_http_requests_total', { method: 'GET', status_class: '2xx' }), 12, 'GET 2xx summed over both workers (probes excluded)')
  t.equal(total(samples, 'prodserver_http_requests_total', { method: 'GET', status_class: '4xx' }), 4, 'GET 4xx')
  t.equal(total(samples, 'prodserver_http_requests_total', { method: 'POST', status_class: '2xx' }), 2, 'POST 2xx')
  t.equal(total(samples, 'prodserver_http_request_duration_seconds_count'), 18, 'the histogram counts the same requests')
  t.same(histogramProblems(samples, 'prodserver_http_request_duration_seconds'), [], 'latency buckets never decrease and +Inf == _count')
  t.ok(has(samples, 'prodserver_connections', { state: 'active' }) && has(samples, 'prodserver_connections', { state: 'queued' }), 'open and queued connection gauges')
  t.equal(total(samples, 'prodserver_workers', { state: 'ready' }), 2, 'two ready workers')
  t.equal(total(samples, 'prodserver_metrics_workers_missing'), 0, 'every worker answered the scrape')
  t.ok(total(samples, 'prodserver_session_store_operation_duration_seconds_count', { op: 'set', store: 'file' }) >= 2, 'file store writes timed')
  t.ok(total(samples, 'prodserver_session_store_operation_duration_seconds_count', { op: 'get', store: 'file' }) >= 2, 'file store reads timed')
  t.same(histogramProblems(samples, 'prodserver_session_store_operation_duration_seconds'), [], 'store histogram consistent')
  t.ok(has(samples, 'nodejs_eventloop_lag_seconds'), 'event-loop delay')
  t.ok(total(samples, 'process_resident_memory_bytes') > 0, 'process memory')
  t.equal(total(samples, 'prodserver_worker_restarts_total', { reason: 'crash' }), 0, 'no crash yet (reported as 0, not absent)')

  // A worker dies: the primary replaces it and the scrape says why.
  await get(port, '/exit').catch(() => undefined)
  await p.waitLine((l) => l.msg === 'worker exited' && l.action === 'respawn')
  const after = await eventually(async () => {
    const { samples } = parsePrometheus((await scrape(metricsPort)).text)
    const replaced = total(samples, 'prodserver_worker_restarts_total', { reason: 'crash' }) === 1 && total(samples, 'prodserver_workers', { state: 'ready' }) === 2
    return replaced ? samples : undefined
  }, 15_000, 'restarts{reason="crash"} = 1 and its replacement ready')
  t.equal(total(after, 'prodserver_worker_restarts_total', { reason: 'timeout' }), 0)
  t.equal(total(after, 'prodserver_http_requests_total'), 18,
    "the dead worker's requests (as of the last scrape) stay in the sum: no counter reset")
  t.equal(total(after, 'prodserver_http_request_duration_seconds_count'), 18, 'and in the histogram')
  t.same(histogramProblems(after, 'prodserver_http_request_duration_seconds'), [], 'which stays consistent')

  // A reload replaces both workers after a graceful drain: each sends its final numbers, so even
  // requests no scrape has seen yet are kept.
  for (let i = 0; i < 6; i++) t.equal((await get(port, '/')).status, 200)
  p.signal('SIGHUP')
  await p.waitLine('reload done', 30_000)
  const reloaded = await eventually(async () => {
    const { samples } = parsePrometheus((await scrape(metricsPort)).text)
    return total(samples, 'prodserver_worker_restarts_total', { reason: 'reload' }) === 2 ? samples : undefined
  }, 15_000, 'restarts{reason="reload"} = 2')
  t.equal(total(reloaded, 'prodserver_http_requests_total'), 24, 'after a reload of every worker: 18 + 6 requests, none lost')
  t.equal(total(reloaded, 'prodserver_http_requests_total', { method: 'GET', status_class: '4xx' }), 4, 'by label, too')
  t.same(histogramProblems(reloaded, 'prodserver_http_request_duration_seconds'), [], 'histogram consistent across retired and live workers')
  t.equal((await scrape(metricsPort, '/other')).status, 404, 'only /metrics is served on the metrics port')

  p.signal('SIGTERM')
  t.equal((await p.waitExit(20_000)).code, 0)
})

t.test('single process: the process serves its own metrics; a taken metrics port fails the boot naming the knob', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const p = spawnServer(t, [CLI, APP, '--host', '127.0.0.1', '--port', String(port), '--metrics-port', String(metricsPort)], {
    env: { SESSION_STORE: 'memory' }
  })
  await p.waitLine('listening', 30_000)
  for (let i = 0; i < 3; i++) await get(port, '/')
  await get(port, '/missing')
  const samples = await eventually(async () => {
    const { samples } = parsePrometheus((await scrape(metricsPort)).text)
    return total(samples, 'prodserver_http_requests_total') === 4 ? samples : undefined
  }, 10_000, '4 requests counted')
  t.equal(total(samples, 'prodserver_http_requests_total', { status_class: '4xx' }), 1)
  t.notOk(has(samples, 'prodserver_worker_restarts_total'), 'no supervisor, no restart counter')

  const clash = spawnServer(t, [CLI, APP, '--host', '127.0.0.1', '--port', String(await freePort()), '--metrics-port', String(metricsPort)], {
    env: { SESSION_STORE: 'memory' }
  })
  const exit = await clash.waitExit(30_000)
  t.equal(exit.code, 2, 'exit code 2: bad configuration')
  t.match(clash.stderr(), new RegExp(`metrics-port ${metricsPort} .*EADDRINUSE`), 'one line naming the knob and the cause')

  p.signal('SIGTERM')
  t.equal((await p.waitExit(20_000)).code, 0)
})
