/**
 * One slow-HTTP attack against the real `prodserver serve` CLI, with a normal client measuring its
 * answers while the attack holds the connection limit full. Shared by the single-process and the
 * cluster attack tests.
 */
import path from 'node:path'
import { FIXTURES, ROOT, freePort, spawnServer, type ServerProcess } from './process'
import { answeredWithin, normalClient, startSlowHttpTest, type Answer, type SlowHttpReport, type SlowMode } from './slowhttptest'

export const PRODSERVER = path.join(ROOT, 'dist', 'lib', 'cli.js')
export const ATTACK_APP = path.join(FIXTURES, 'attack-app.js')

interface Teardown { teardown (fn: () => unknown): void }

export interface Scenario {
  mode: Exclude<SlowMode, 'slow-read'>
  /** Attack connections: more than the server's slots, so new ones keep arriving once it is full. */
  connections: number
  /** Connections per second asked of slowhttptest (it reaches ~200-600/s here, less on a busy machine). */
  rate: number
  /** Extra CLI flags, e.g. ['--connection-limit', '50'] or ['--workers', '2']. */
  flags?: string[]
  /** Worker processes (cluster mode) whose limits must all be full before measuring; 0 = single process. */
  workers?: number
}

export interface ScenarioResult {
  server: ServerProcess
  attack: SlowHttpReport
  /** The normal client's answers while every limit was full. */
  answers: Answer[]
  /** Slowest answer before the attack: what this machine gives right now. */
  baselineMs: number
  /** Answer time that counts as answered: 2 s, or 4 × the baseline on a machine slower than that. */
  withinMs: number
  share: number
  summary: string
}

/** How long the normal client is measured once every worker's limit is full: at least MEASURE_MS
 * and MIN_ANSWERS answers (a share of 95% means little over fewer), at most MEASURE_CAP_MS. */
const MEASURE_MS = 4000
const MIN_ANSWERS = 20
const MEASURE_CAP_MS = 20_000
/** Upper bound of an attack; the test stops it after MEASURE_MS, this only bounds a failure. */
const ATTACK_BOUND_S = 60

const SATURATED = (l: { msg?: string }): boolean => /^connection limit \d+ reached/.test(l.msg ?? '')

export async function runAttack (t: Teardown, s: Scenario): Promise<ScenarioResult> {
  const port = await freePort()
  const cluster = (s.workers ?? 0) > 0
  const server = spawnServer(t, [PRODSERVER, 'serve', ATTACK_APP, '--host', '127.0.0.1', '--port', String(port), ...(s.flags ?? [])])
  await server.waitLine(cluster ? 'all workers ready' : 'listening', 30_000)

  // The machine is shared and loaded: measure what an answer takes without an attack first.
  const baseline = normalClient(port, '/hello', 50, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const calm = await baseline.stop()
  const baselineMs = Math.max(...calm.map((a) => a.ms ?? Infinity))
  const withinMs = Math.max(2000, Math.ceil(4 * baselineMs))

  const attack = startSlowHttpTest(t, {
    mode: s.mode,
    url: `http://127.0.0.1:${port}${s.mode === 'slow-body' ? '/echo' : '/hello'}`,
    connections: s.connections,
    rate: s.rate,
    seconds: ATTACK_BOUND_S
  })
  // Measure from the moment every process's limit is full and connections wait: before that any
  // server answers.
  await server.waitLine((l) => SATURATED(l) && new Set(server.lines.filter(SATURATED).map((x) => x.pid)).size >= Math.max(1, s.workers ?? 0), 45_000)
  const client = normalClient(port, '/hello', 100, withinMs)
  const measuring = Date.now()
  while (Date.now() - measuring < MEASURE_MS || (client.answers.length < MIN_ANSWERS && Date.now() - measuring < MEASURE_CAP_MS)) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const answers = await client.stop()
  const report = await attack.stop()
  const { share, summary } = answeredWithin(answers, withinMs)
  return { server, attack: report, answers, baselineMs, withinMs, share, summary: `${summary}; baseline without attack ${Math.round(baselineMs)} ms` }
}

/**
 * The two cluster cases of one attack (one test file per attack keeps each inside the per-file
 * timeout on a loaded machine): the rate (200/s) against a small limit, and as fast as
 * slowhttptest goes (~500/s here) against the default limit, so that 2 × 1000 slots fill in seconds.
 */
export function clusterAttackTests (tap: { test (name: string, fn: (t: any) => Promise<void>): unknown }, mode: Scenario['mode']): void {
  for (const [label, flags, connections, rate] of [['--connection-limit 50', ['--connection-limit', '50'], 1000, 200], ['default connection limit (1000 each)', [], 2500, 1000]] as const) {
    tap.test(`${mode}, 2 workers, ${label}: a normal client keeps being answered`, async (t) => {
      const r = await runAttack(t, { mode, connections, rate, workers: 2, flags: ['--workers', '2', ...flags] })
      t.ok(r.answers.length >= 10, `the normal client kept trying while every limit was full (${r.answers.length} requests)`)
      t.ok(r.share >= 0.95, r.summary)
    })
  }
}
