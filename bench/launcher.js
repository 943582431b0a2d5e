'use strict'
// B) Launcher: single process vs prodserver cluster of 2 vs plain node:cluster of 2 vs PM2 -i 2,
// on a CPU-bound route (2 ms of synchronous work) and a hello route; failed requests during a
// SIGHUP rolling reload under load; launch-to-all-ready time. The cost of the memory budget's
// sampling: the same cluster with sampling off and every 100 ms (10× the default rate), on /cpu.
//
//   node bench/launcher.js            (BENCH_DURATION=5 seconds per measurement, BENCH_WARMUP=1)

const path = require('node:path')
const u = require('./lib/util')
const { CLI, APP, PLAIN, NODE_CLUSTER, cleanEnv, waitAllReady, samplePids, pm2Daemon } = require('./lib/contenders')


const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 50)
const RELOAD_SECONDS = Number(process.env.BENCH_RELOAD_DURATION || 10)
const RELOAD_AT = Number(process.env.BENCH_RELOAD_AT || 3)
const RELOAD_CONNECTIONS = 20
const ROUTES = ['cpu', 'hello']
const HISTORY = 'History (before this work, same kind of machine, /cpu): single 479 rps, node:cluster 934 (1.95×), PM2 861 (1.80×).'

let pm2d = null
const pm2 = (args, timeoutMs) => pm2d.run(args, timeoutMs)
const pm2Kill = async () => { if (pm2d) await pm2d.kill() }

const CONTENDERS = [
  {
    name: 'ours-single',
    label: 'prodserver serve (single process)',
    workers: 1,
    ours: true,
    start: (port) => u.spawnChild(process.execPath, [CLI, 'serve', APP, '--host', u.HOST, '--port', String(port)], { env: cleanEnv(), name: 'prodserver single', readyLog: /"msg":"listening"/ })
  },
  {
    name: 'plain-single',
    label: 'plain Fastify, one process (reference)',
    workers: 1,
    extra: true, // not in the default run (time budget): BENCH_EXTRA=1 or BENCH_ONLY=plain-single
    start: (port) => u.spawnChild(process.execPath, [PLAIN], { env: cleanEnv({ PORT: String(port) }), name: 'plain single' })
  },
  {
    name: 'ours-cluster',
    label: 'prodserver serve --workers 2',
    workers: 2,
    ours: true,
    reload: 'sighup',
    start: (port) => u.spawnChild(process.execPath, [CLI, 'serve', APP, '--host', u.HOST, '--port', String(port), '--workers', '2'], { env: cleanEnv(), name: 'prodserver cluster', readyLog: /"msg":"all workers ready"/ })
  },
  {
    name: 'ours-cluster-mem-off',
    label: 'prodserver serve --workers 2, memory sampling off',
    workers: 2,
    routes: ['cpu'],
    start: (port) => u.spawnChild(process.execPath, [CLI, 'serve', APP, '--host', u.HOST, '--port', String(port), '--workers', '2', '--worker-memory-interval', '0'], { env: cleanEnv(), name: 'prodserver cluster, no sampling', readyLog: /"msg":"all workers ready"/ })
  },
  {
    name: 'ours-cluster-mem-100ms',
    label: 'prodserver serve --workers 2, memory sampled every 100 ms',
    workers: 2,
    routes: ['cpu'],
    start: (port) => u.spawnChild(process.execPath, [CLI, 'serve', APP, '--host', u.HOST, '--port', String(port), '--workers', '2', '--worker-memory-interval', '100ms'], { env: cleanEnv(), name: 'prodserver cluster, sampling 100 ms', readyLog: /"msg":"all workers ready"/ })
  },
  {
    name: 'node-cluster',
    label: 'plain node:cluster, 2 workers',
    workers: 2,
    start: (port) => u.spawnChild(process.execPath, [NODE_CLUSTER], { env: cleanEnv({ PORT: String(port), WORKERS: '2' }), name: 'node:cluster' })
  },
  {
    name: 'pm2',
    label: 'PM2 7 -i 2 (cluster mode)',
    workers: 2,
    reload: 'pm2',
    pm2: true,
    start: async (port) => {
      pm2d = pm2Daemon(port)
      await pm2(['start', PLAIN, '-i', '2', '--name', 'bench-app'], 60000)
      return null
    }
  }
]

async function reloadUnderLoad (c, port, rec) {
  const before = await samplePids(port)
  let signalled = false
  const timer = setTimeout(() => {
    signalled = true
    if (c.reload === 'sighup') {
      try { process.kill(rec.child.pid, 'SIGHUP') } catch (err) { u.log(`SIGHUP: ${err.message}`) }
    } else if (c.reload === 'pm2') {
      pm2(['reload', 'bench-app'], 30000).catch((err) => u.log(`pm2 reload: ${err.message}`))
    }
  }, RELOAD_AT * 1000)
  let r
  try {
    r = u.summarize(await u.cannon({ url: `http://${u.HOST}:${port}/hello`, connections: RELOAD_CONNECTIONS, duration: RELOAD_SECONDS }))
  } finally { clearTimeout(timer) }
  // did the reload really replace the workers? (poll up to 20 s: a drain may still be going on)
  let after = new Set()
  const t0 = Date.now()
  while (Date.now() - t0 < 20000) {
    after = await samplePids(port)
    const replaced = [...before].every((p) => !after.has(p)) && after.size >= c.workers
    if (replaced) break
    await u.sleep(250)
  }
  const replaced = [...before].filter((p) => !after.has(p)).length
  return { ...r, signalled, before: [...before], after: [...after], replaced }
}

async function run () {
  const reloads = []
  const problems = []
  const notRun = []
  const errors = new Map()
  const live = [] // { c, port, rec, ready, m }
  const fail = (c, err) => {
    const msg = String(err && err.message).split('\n')[0]
    u.log(`  ${c.name} could not run: ${err && err.message}`)
    errors.set(c.name, msg)
    if (c.ours) notRun.push(`${c.name}: ${msg}`)
    else problems.push(`${c.name}: ${err && err.message}`)
  }
  try {
    // Start everything (one at a time: launch→ready is measured on an otherwise idle machine);
    // idle contenders cost nothing while another one is measured.
    for (const c of selected()) {
      let rec = null
      try {
        u.log(`launcher: starting ${c.name}`)
        const port = await u.freePort()
        const t0 = Date.now()
        rec = await c.start(port)
        const ready = await waitAllReady(port, c.workers, t0, rec)
        if (rec && rec.readyLogAt == null && c.ours) await u.sleep(200) // the log line may trail the answers
        ready.logMs = rec && rec.readyLogAt != null ? rec.readyLogAt - t0 : null
        u.log(`  ${c.name}: first answer ${ready.firstMs} ms, all ${c.workers} ready ${ready.allMs} ms`)
        live.push({ c, port, rec, ready, m: {} })
      } catch (err) {
        fail(c, err)
        if (rec) await u.stopChild(rec, 3000)
        if (c.pm2) await pm2Kill()
      }
    }
    // Throughput: all contenders in interleaved slices, per route.
    for (const route of ROUTES) {
      const entries = live.filter((l) => !errors.has(l.c.name) && (l.c.routes ?? ROUTES).includes(route)).map((l) => ({ key: l.c.name, url: `http://${u.HOST}:${l.port}/${route}` }))
      if (!entries.length) continue
      u.log(`launcher: measuring /${route}: ${entries.map((e) => e.key).join(', ')}`)
      const ms = await u.interleaved(entries, { connections: CONNECTIONS })
      for (const [name, m] of ms) {
        const l = live.find((x) => x.c.name === name)
        if (m.failed) { fail(l.c, m.failed); continue }
        l.m[route] = m
        u.log(`  ${name} /${route}: ${Math.round(m.rps)} rps, p99 ${m.p99} ms, errors ${m.errors}, timeouts ${m.timeouts}, non2xx ${m.non2xx}`)
      }
    }
    // Reload under load, one contender at a time.
    for (const l of live) {
      if (!l.c.reload || errors.has(l.c.name)) continue
      try {
        u.log(`launcher: reload under load: ${l.c.name}`)
        const rl = await reloadUnderLoad(l.c, l.port, l.rec)
        u.log(`  ${l.c.name} reload under load: ${rl.total} requests, ${rl.errors} errors, ${rl.timeouts} timeouts, ${rl.non2xx} non-2xx, workers replaced ${rl.replaced}/${rl.before.length} (${rl.before} → ${rl.after})`)
        reloads.push({ c: l.c, r: rl })
      } catch (err) {
        const msg = String(err && err.message).split('\n')[0]
        if (l.c.ours) notRun.push(`${l.c.name} reload: ${msg}`)
        reloads.push({ c: l.c, error: msg })
      }
    }
  } finally {
    for (const l of live) {
      if (l.rec) await u.stopChild(l.rec, 3000)
      if (l.c.pm2) await pm2Kill()
    }
  }
  for (const c of selected()) {
    if (c.reload === 'sighup' && errors.has(c.name) && !reloads.some((r) => r.c === c)) reloads.push({ c, error: errors.get(c.name) })
  }
  const results = selected().filter((c) => live.some((l) => l.c === c) || errors.has(c.name)).map((c) => {
    if (errors.has(c.name)) return { c, error: errors.get(c.name) }
    const l = live.find((x) => x.c === c)
    return { c, ready: l.ready, m: l.m }
  })
  return { markdown: render(results, reloads), results, reloads, problems, notRun }
}

function render (results, reloads) {
  const get = (name) => results.find((r) => r.c.name === name && r.m)
  let single = get('ours-single')
  let singleName = 'ours single'
  if (!single) { single = get('plain-single'); singleName = 'plain single (ours not available)' }
  const nodeCluster = get('node-cluster')
  const rows = []
  for (const r of results) {
    if (r.error) {
      rows.push([r.c.label, '—', '—', '—', '—', '—', '—', `could not run: ${r.error.slice(0, 160)}`])
      continue
    }
    for (const route of r.c.routes ?? ROUTES) {
      const m = r.m[route]
      if (m === undefined) continue
      const vsSingle = single && r !== single ? m.rps / single.m[route].rps : null
      const vsNode = nodeCluster && r.c.workers > 1 && r !== nodeCluster ? m.rps / nodeCluster.m[route].rps : null
      let status = ''
      if (r.c.name === 'ours-cluster' && route === 'cpu') {
        const misses = []
        if (vsSingle != null && vsSingle < 1.9) misses.push(`${vsSingle.toFixed(2)}× single < 1.9×`)
        if (vsNode != null && vsNode < 0.95) misses.push(`${vsNode.toFixed(2)}× node:cluster < 0.95×`)
        status = (misses.length ? `below target (${misses.join('; ')})` : 'ok') + '; target ≥ 1.9× single, ≥ 0.95× node:cluster'
      }
      if (m.errors || m.non2xx) status = [status, `${m.errors} errors, ${m.non2xx} non-2xx`].filter(Boolean).join('; ')
      rows.push([
        r.c.label,
        `GET /${route}`,
        u.fmtNum(m.rps),
        u.fmtNum(m.p99, m.p99 < 10 ? 1 : 0),
        r === single ? '1.00× (base)' : u.fmtRatio(vsSingle),
        u.fmtRatio(vsNode),
        route === (r.c.routes ?? ROUTES)[0] ? `${u.fmtNum(r.ready.allMs)} ms` + (r.ready.logMs != null ? ` (ready log line ${u.fmtNum(r.ready.logMs)} ms)` : '') : '',
        status
      ])
    }
  }
  const rrows = reloads.map(({ c, r, error }) => {
    if (error) return [c.label, '—', '—', '—', '—', '—', `could not run: ${error.slice(0, 120)}`]
    const failed = r.errors + r.timeouts + r.non2xx
    const notes = []
    if (!r.signalled) notes.push('reload not triggered')
    if (r.replaced < r.before.length) notes.push(`only ${r.replaced}/${r.before.length} workers replaced: reload did not complete`)
    let status = c.reload === 'sighup' ? (failed === 0 && !notes.length ? 'ok (target 0)' : `below target (${failed} failed requests; target 0 and all workers replaced)`) : 'reference'
    if (notes.length) status += '; ' + notes.join('; ')
    return [c.label + (c.reload === 'sighup' ? ', SIGHUP' : ', `pm2 reload`'), u.fmtNum(r.total), String(r.errors), String(r.timeouts), String(r.non2xx), `${r.replaced}/${r.before.length}`, status]
  })
  return [
    `Launcher: ${CONNECTIONS} connections; /cpu = 2 ms synchronous work per request; ratios vs ${singleName}; ` +
      'all contenders measured in interleaved slices (p99 = mean of the slices\'); launch→all ready = spawn until every worker has answered.',
    '',
    u.mdTable(['contender', 'route', 'rps', 'p99 ms', 'vs single', 'vs node:cluster', 'launch→all ready', 'target / status'], rows),
    '',
    HISTORY,
    '',
    memorySamplingLine(get, samplingRoundCpuUs()),
    '',
    `Reload under load: autocannon ${RELOAD_SECONDS} s, ${RELOAD_CONNECTIONS} connections on /hello, reload after ${RELOAD_AT} s.`,
    '',
    u.mdTable(['contender', 'requests', 'errors', 'timeouts', 'non-2xx', 'workers replaced', 'target / status'], rrows)
  ].join('\n')
}

/** The default sampling interval in ms, from the knob table (one definition of the fact). */
function defaultSamplingMs () {
  const { KNOBS } = require(path.join(u.ROOT, 'dist', 'lib', 'config', 'knobs.js'))
  return KNOBS.find((k) => k.name === 'worker-memory-interval').default
}

/** The memory budget's sampling, on /cpu: the default interval and every 100 ms against none. */
function memorySamplingLine (get, perRoundUs) {
  const off = get('ours-cluster-mem-off')
  const everyMs = defaultSamplingMs()
  const every = everyMs % 1000 === 0 ? `${everyMs / 1000} s` : `${everyMs} ms`
  const rps = (r) => r && r.m.cpu ? r.m.cpu.rps : undefined
  const cpu = perRoundUs === undefined
    ? ''
    : ` One sampling round of 2 workers (two /proc reads and the budget decision) costs the primary ${perRoundUs.toFixed(0)} µs of CPU ` +
      `(mean of 20,000 rounds, in this process): ${(perRoundUs / everyMs / 10).toFixed(4)} % of one core at the default ${every}, ${(perRoundUs / 100 / 10).toFixed(3)} % every 100 ms.`
  if (rps(off) === undefined) return `Memory sampling cost: the throughput comparison did not run (ours-cluster-mem-off).${cpu}`
  const parts = [[`every ${every} (the default)`, get('ours-cluster')], ['every 100 ms', get('ours-cluster-mem-100ms')]]
    .filter(([, r]) => rps(r) !== undefined)
    .map(([what, r]) => `${what} ${u.fmtRatio(rps(r) / rps(off))} (p99 ${u.fmtNum(r.m.cpu.p99)} vs ${u.fmtNum(off.m.cpu.p99)} ms)`)
  return `Memory sampling cost, cluster of 2 on /cpu, rps with sampling ÷ rps without: ${parts.join('; ')}.${cpu}`
}

/** CPU time of one MemoryWatch round over two live processes, as the primary runs it. */
function samplingRoundCpuUs () {
  const { MemoryWatch } = require(path.join(u.ROOT, 'dist', 'lib', 'cluster', 'memory-watch.js'))
  const { spawnSync, spawn } = require('node:child_process')
  if (spawnSync('sleep', ['0']).error) return undefined
  const kids = [spawn('sleep', ['60']), spawn('sleep', ['60'])]
  try {
    const plan = { budgetMb: 200, threshold: 0.85, samples: 3, intervalMs: 2000 }
    const watch = new MemoryWatch(plan, () => kids.map((k) => ({ pid: k.pid, heap: { usedMb: 10, limitMb: 150 } })), () => {})
    for (let i = 0; i < 1000; i++) watch.sampleAll()
    const rounds = 20000
    const before = process.cpuUsage()
    for (let i = 0; i < rounds; i++) watch.sampleAll()
    const used = process.cpuUsage(before)
    return (used.user + used.system) / rounds
  } finally {
    for (const k of kids) k.kill('SIGKILL')
  }
}

function selected () {
  return u.selectContenders(CONTENDERS)
}

module.exports = { run }

if (require.main === module) u.runStandalone(run)
