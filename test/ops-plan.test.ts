/**
 * The ops knobs in the plan: off by default, drain-delay defaults that depend on ready-path, and
 * one-line errors for paths a balancer could never probe.
 */
import t from 'tap'
import { planServer } from '../lib/plan/plan-server'

const res = { cpus: 2, memoryMb: 2048, source: 'test' }

t.test('health, readiness and metrics are off unless asked for', async (t) => {
  const p = planServer({ env: {} }, res)
  t.same(p.ops, { healthPath: undefined, readyPath: undefined, drainDelayMs: 0, metricsPort: undefined, metricsHost: '127.0.0.1' })
  t.equal(p.sources['drain-delay'], 'default (no ready-path)')
})

t.test('from the environment, with sources; drain-delay is 5 s once a readiness path exists', async (t) => {
  const p = planServer({ env: { PRODSERVER_HEALTH_PATH: '/healthz', PRODSERVER_READY_PATH: '/readyz', PRODSERVER_METRICS_PORT: '9100', PRODSERVER_METRICS_HOST: '0.0.0.0' } }, res)
  t.same(p.ops, { healthPath: '/healthz', readyPath: '/readyz', drainDelayMs: 5000, metricsPort: 9100, metricsHost: '0.0.0.0' })
  t.equal(p.sources['metrics-port'], 'env PRODSERVER_METRICS_PORT')
  t.equal(p.sources['drain-delay'], 'default (ready-path is set)')
  t.equal(planServer({ env: { PRODSERVER_READY_PATH: '/readyz', PRODSERVER_DRAIN_DELAY: '0' } }, res).ops.drainDelayMs, 0, 'an explicit 0 wins')
  t.equal(planServer({ env: { PRODSERVER_DRAIN_DELAY: '15' } }, res).ops.drainDelayMs, 15_000, 'a bare number is seconds')
})

t.test('bad values: one line naming the knob and what is accepted', async (t) => {
  t.throws(() => planServer({ env: { PRODSERVER_HEALTH_PATH: 'healthz' } }, res), { exitCode: 2, message: /^health-path="healthz" \(env PRODSERVER_HEALTH_PATH\) is not a URL path; accepted: a path starting with \// })
  t.throws(() => planServer({ env: { PRODSERVER_HEALTH_PATH: '/z', PRODSERVER_READY_PATH: '/z' } }, res), { exitCode: 2, message: /health-path and ready-path are both \/z/ })
  t.throws(() => planServer({ env: { PRODSERVER_METRICS_PORT: '70000' } }, res), { exitCode: 2, message: /PRODSERVER_METRICS_PORT/ })
})
