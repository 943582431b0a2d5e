/**
 * Slow-HTTP attacks (real slowhttptest) against `prodserver serve`, single process: a normal
 * client keeps getting answers (≥ 95% within 2 s) while attackers hold the connection limit full,
 * with the default limit and with a small one. Before the gate closed connections without a
 * complete request first, queued attackers took every freed slot and the normal client got no
 * answer until the attack ended.
 */
import t from 'tap'
import { runAttack } from './helpers/attack-scenario'

const CLOSED_EARLY = /^connection queue empty again; \d+ connection\(s\) waited for a free slot; \d+ closed before sending a complete request/

for (const mode of ['slowloris', 'slow-body'] as const) {
  // The rate (200/s) against a small limit; against the default limit, as fast as
  // slowhttptest goes (~500/s here), so that 1000 slots fill within seconds.
  for (const [label, flags, connections, rate] of [['--connection-limit 50', ['--connection-limit', '50'], 1000, 200], ['default connection limit (1000)', [], 1400, 1000]] as const) {
    t.test(`${mode}, ${label}: a normal client keeps being answered`, async (t) => {
      const r = await runAttack(t, { mode, connections, rate, flags: [...flags] })
      t.ok(r.answers.length >= 10, `the normal client kept trying while the limit was full (${r.answers.length} requests)`)
      t.ok(r.share >= 0.95, r.summary)
      const line = await r.server.waitLine((l) => CLOSED_EARLY.test(l.msg ?? ''), 20_000)
      t.pass(`attack connections were closed to make room: ${line.msg}`)
    })
  }
}
