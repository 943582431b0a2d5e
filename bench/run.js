'use strict'
// `npm run bench` entry: A) sessions, B) launcher, C) behind nginx (needs nginx), printed as
// Markdown (paste into the README), with the machine line. `node bench/run.js sessions|launcher|proxy`
// runs one part.
// Env: BENCH_DURATION (s per measurement, default 5), BENCH_WARMUP (s, default 1),
//      BENCH_SLICES (interleaved slices per measurement, default 4), BENCH_CONNECTIONS (default 50),
//      BENCH_RELOAD_DURATION (default 10), BENCH_RELOAD_AT (default 3),
//      BENCH_PROXY_ROUNDS (default 2), BENCH_PROXY_RELOADS (default 3),
//      BENCH_ONLY=name,name (a subset of contenders), BENCH_EXTRA=1 (adds the plain single-process
//      reference to the launcher part), BENCH_TIMEOUT (s, hard bound of the whole run).
// Exit code: non-zero only on harness errors; missed targets are marked "below target" in the tables.

const fs = require('node:fs')
const path = require('node:path')
const u = require('./lib/util')

const PARTS = {
  sessions: () => require('./sessions').run(),
  launcher: () => require('./launcher').run(),
  proxy: () => require('./proxy').run()
}
const TITLES = { sessions: 'Sessions', launcher: 'Launcher', proxy: 'Behind nginx' }

async function main () {
  const which = process.argv[2]
  const parts = which ? [which] : ['sessions', 'launcher', 'proxy']
  for (const p of parts) {
    if (!PARTS[p]) {
      console.error(`usage: node bench/run.js [${Object.keys(PARTS).join('|')}]`)
      process.exitCode = 2
      return
    }
  }
  if (!fs.existsSync(path.join(u.ROOT, 'dist', 'index.js'))) {
    console.error('dist/ missing: run `npm run build` first (or `npm run bench`)')
    process.exitCode = 1
    return
  }
  // Hard bound on the whole run (the default run takes ~6-8 minutes).
  const budgetMs = Number(process.env.BENCH_TIMEOUT || 0) * 1000 || (20 + 40 * u.DURATION) * 1000 + 600000
  const guard = setTimeout(() => {
    console.error(`bench: time budget of ${Math.round(budgetMs / 1000)} s exceeded, stopping`)
    u.cleanupAll().finally(() => process.exit(1))
  }, budgetMs)
  guard.unref()

  const out = []
  const notRun = []
  const problems = []
  const t0 = Date.now()
  try {
    for (const p of parts) {
      const r = await PARTS[p]()
      out.push(`### ${TITLES[p]}\n\n${r.markdown}`)
      notRun.push(...r.notRun)
      problems.push(...r.problems)
    }
  } catch (err) {
    problems.push(err && err.stack)
  } finally {
    await u.cleanupAll()
    clearTimeout(guard)
  }
  console.log(`## Benchmarks\n\nMachine: ${u.machineLine()}\n` +
    `Command: \`${process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'node bench/run.js' + (which ? ' ' + which : '')}\`` +
    ` (took ${Math.round((Date.now() - t0) / 1000)} s). The machine is shared and noisy: compare ratios within one run, not absolute numbers.\n`)
  console.log(out.join('\n\n'))
  if (notRun.length) console.log('\nCould not run (not available yet):\n' + notRun.map((s) => `- ${s}`).join('\n'))
  if (problems.length) {
    console.error('\nHarness errors:\n' + problems.map((s) => `- ${s}`).join('\n'))
    process.exitCode = 1
  }
}

main()
