'use strict'
// C) Behind nginx: what a reload costs when the server sits behind a reverse proxy with upstream
// keep-alive (`keepalive 32`, HTTP/1.1, `Connection ""`), the way nginx is usually deployed.
// prodserver (SIGHUP), plain node:cluster (a hand-written rolling restart) and PM2 (`pm2 reload`),
// 2 workers each, one after the other in the same run: POST and GET load through nginx (autocannon,
// 64 clients — more than nginx's pool, so it keeps opening, reusing and dropping connections — on
// an API route of varying length), RELOADS reloads per round, ROUNDS rounds. Counted: answers that
// were not 2xx and socket errors, per method; upstream resets in nginx's error log; requests nginx
// retried on its own (GETs: the client never sees those).
// Then a stop: two instances behind one nginx, SIGTERM to one under the same load; target 0 lost.
//
//   node bench/proxy.js        (BENCH_PROXY_ROUNDS=2, BENCH_PROXY_RELOADS=3)

const u = require('./lib/util')
const { CLI, APP, PLAIN, NODE_CLUSTER, cleanEnv, waitAllReady, pm2Daemon } = require('./lib/contenders')
const { startNginx } = require('./lib/nginx')

const ROUNDS = Number(process.env.BENCH_PROXY_ROUNDS || 2)
const RELOADS = Number(process.env.BENCH_PROXY_RELOADS || 3)
const CLIENTS = { POST: 56, GET: 8 }

const ours = (port, flags) => u.spawnChild(process.execPath, [CLI, 'serve', APP, '--host', u.HOST, '--port', String(port), ...flags], { env: cleanEnv(), name: 'prodserver' })

const CONTENDERS = [
  {
    name: 'ours',
    label: 'prodserver serve --workers 2, SIGHUP',
    ours: true,
    start: async (port) => ({ rec: ours(port, ['--workers', '2']) }),
    // The reload is done when the primary says so.
    reload: async ({ rec }) => {
      const before = (rec.log.match(/"msg":"reload done"/g) || []).length
      process.kill(rec.child.pid, 'SIGHUP')
      await until(() => (rec.log.match(/"msg":"reload done"/g) || []).length > before, 60000, 'reload done')
    }
  },
  {
    name: 'node-cluster',
    label: 'plain node:cluster, 2 workers, rolling restart on SIGHUP',
    start: async (port) => ({ rec: u.spawnChild(process.execPath, [NODE_CLUSTER], { env: cleanEnv({ PORT: String(port), WORKERS: '2' }), name: 'node:cluster' }) }),
    reload: async ({ rec, port }) => {
      const before = await pidsOf(port)
      process.kill(rec.child.pid, 'SIGHUP')
      await until(async () => { const now = await pidsOf(port); return now.size >= 2 && [...before].every((p) => !now.has(p)) }, 60000, 'all workers replaced')
    }
  },
  {
    name: 'pm2',
    label: 'PM2 7 -i 2, `pm2 reload`',
    start: async (port) => {
      const pm2 = pm2Daemon(port)
      await pm2.run(['start', PLAIN, '-i', '2', '--name', 'bench-proxy'], 60000)
      return { pm2 }
    },
    reload: ({ pm2 }) => pm2.run(['reload', 'bench-proxy'], 60000),
    stop: ({ pm2 }) => pm2.kill()
  }
]

async function until (check, timeoutMs, what) {
  const t0 = Date.now()
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await u.sleep(50)
  }
}

async function pidsOf (port) {
  const pids = new Set()
  for (let i = 0; i < 8; i++) {
    try { pids.add(JSON.parse((await u.request(port, '/pid', { timeout: 2000 })).body).pid) } catch {}
  }
  return pids
}

// POST and GET load through nginx until stop() is called.
function load (port) {
  const runs = {}
  for (const method of ['POST', 'GET']) {
    let instance
    const done = u.cannon({
      url: `http://${u.HOST}:${port}/api`,
      method,
      body: method === 'POST' ? JSON.stringify({ hello: 'world' }) : undefined,
      headers: method === 'POST' ? { 'content-type': 'application/json' } : undefined,
      connections: CLIENTS[method],
      duration: 600,
      timeout: 30,
      onInstance: (i) => { instance = i }
    })
    runs[method] = { done, stop: () => instance.stop() }
  }
  return {
    stop: async () => {
      for (const r of Object.values(runs)) r.stop()
      const out = {}
      for (const [method, r] of Object.entries(runs)) {
        const res = await r.done
        out[method] = { total: res.requests.total, non2xx: res.non2xx, errors: res.errors + res.timeouts }
      }
      return out
    }
  }
}

async function reloadRound (c) {
  const port = await u.freePort()
  const t0 = Date.now()
  const state = { port, ...(await c.start(port)) }
  let nginx
  try {
    await waitAllReady(port, 2, t0, state.rec, 60000)
    nginx = await startNginx([port])
    const traffic = load(nginx.port)
    await u.sleep(2000)
    for (let i = 0; i < RELOADS; i++) {
      await c.reload(state)
      await u.sleep(1000)
    }
    const r = await traffic.stop()
    return { ...r, resets: nginx.resets(), retried: nginx.retried(), reloads: RELOADS }
  } finally {
    if (nginx) await nginx.stop()
    if (c.stop) await c.stop(state)
    if (state.rec) await u.stopChild(state.rec, 5000)
  }
}

// Two instances behind one nginx; SIGTERM to the first under load.
async function stopRound (flags) {
  const ports = [await u.freePort(), await u.freePort()]
  const recs = ports.map((p) => ours(p, flags))
  let nginx
  try {
    for (let i = 0; i < 2; i++) await waitAllReady(ports[i], flags.length ? 2 : 1, Date.now(), recs[i], 60000)
    nginx = await startNginx(ports)
    const traffic = load(nginx.port)
    await u.sleep(2000)
    const t0 = Date.now()
    process.kill(recs[0].child.pid, 'SIGTERM')
    await until(() => recs[0].exited, 30000, 'the stopped instance to exit')
    const stopMs = Date.now() - t0
    await u.sleep(1000)
    const r = await traffic.stop()
    return { ...r, resets: nginx.resets(), retried: nginx.retried(), stopMs }
  } finally {
    if (nginx) await nginx.stop()
    for (const rec of recs) await u.stopChild(rec, 5000)
  }
}

function add (acc, r) {
  for (const m of ['POST', 'GET']) {
    acc[m] = acc[m] || { total: 0, non2xx: 0, errors: 0 }
    for (const k of ['total', 'non2xx', 'errors']) acc[m][k] += r[m][k]
  }
  for (const k of ['resets', 'retried', 'reloads']) acc[k] = (acc[k] || 0) + (r[k] || 0)
  acc.stopMs = [...(acc.stopMs || []), ...(r.stopMs != null ? [r.stopMs] : [])]
  return acc
}

async function run () {
  const problems = []
  const notRun = []
  const reloads = []
  for (const c of u.selectContenders(CONTENDERS)) {
    let acc = null
    try {
      for (let i = 0; i < ROUNDS; i++) {
        u.log(`proxy: ${c.name}, round ${i + 1}/${ROUNDS} (${RELOADS} reloads behind nginx)`)
        const r = await reloadRound(c)
        u.log(`  POST ${r.POST.total} (${r.POST.non2xx} non-2xx, ${r.POST.errors} errors), GET ${r.GET.total} (${r.GET.non2xx} non-2xx, ${r.GET.errors} errors), nginx resets ${r.resets}, retried ${r.retried}`)
        acc = add(acc || {}, r)
      }
      reloads.push({ c, r: acc })
    } catch (err) {
      const msg = String(err && err.message).split('\n')[0]
      ;(c.ours ? notRun : problems).push(`${c.name}: ${msg}`)
      reloads.push({ c, error: msg })
    }
  }
  const stops = []
  for (const [label, flags] of [['prodserver --workers 2 (cluster)', ['--workers', '2']], ['prodserver (single process)', []]]) {
    let acc = null
    try {
      for (let i = 0; i < ROUNDS; i++) {
        u.log(`proxy: stop of one of two instances, ${label}, round ${i + 1}/${ROUNDS}`)
        const r = await stopRound(flags)
        u.log(`  POST ${r.POST.total} (${r.POST.non2xx} non-2xx), GET ${r.GET.total} (${r.GET.non2xx} non-2xx), nginx resets ${r.resets}, stop ${r.stopMs} ms`)
        acc = add(acc || {}, r)
      }
      stops.push({ label, r: acc })
    } catch (err) {
      const msg = String(err && err.message).split('\n')[0]
      notRun.push(`stop ${label}: ${msg}`)
      stops.push({ label, error: msg })
    }
  }
  return { markdown: render(reloads, stops), problems, notRun }
}

function render (reloads, stops) {
  const perReload = (n, r) => (n / r.reloads).toFixed(n / r.reloads >= 10 ? 0 : 1)
  const rows = []
  for (const { c, r, error } of reloads) {
    if (error) { rows.push([c.label, '—', '—', '—', '—', '—', `could not run: ${error.slice(0, 120)}`]); continue }
    for (const m of ['POST', 'GET']) {
      const failed = r[m].non2xx + r[m].errors
      const hidden = m === 'GET' ? r.retried : 0
      rows.push([c.label, m, u.fmtNum(r[m].total), String(r[m].non2xx), String(r[m].errors), m === 'GET' ? String(r.retried) : '—',
        `${perReload(failed, r)}${hidden ? ` (+${perReload(hidden, r)} hidden by nginx's retry)` : ''}` + (c.ours && m === 'POST' ? (failed === 0 && r.resets === 0 ? '; target 0: ok' : '; target 0: missed') : '')])
    }
  }
  const oursReload = reloads.find((x) => x.c.name === 'ours' && x.r)
  const resetLine = reloads.filter((x) => x.r).map((x) => `${x.c.name} ${x.r.resets}`).join(', ')
  const lost = (r) => r.POST.non2xx + r.POST.errors + r.GET.non2xx + r.GET.errors + r.resets
  const srows = stops.map(({ label, r, error }) => error
    ? [label, '—', '—', '—', '—', '—', `could not run: ${error.slice(0, 120)}`]
    : [label, String(r.stopMs.length), `${r.POST.non2xx} / ${u.fmtNum(r.POST.total)}`, `${r.GET.non2xx} / ${u.fmtNum(r.GET.total)}`, String(r.resets),
        r.stopMs.map((ms) => `${ms} ms`).join(', '), lost(r) === 0 ? 'ok' : 'missed'])
  return [
    `Behind nginx (upstream \`keepalive 32\`, HTTP/1.1): ${ROUNDS} rounds × ${RELOADS} reloads per contender, autocannon ${CLIENTS.POST} POST + ${CLIENTS.GET} GET clients through nginx on an API route (up to 30 ms wait + 1 ms work). ` +
      'Failed = non-2xx answers + socket errors seen by the client.',
    '',
    u.mdTable(['contender', 'method', 'requests', 'non-2xx', 'socket errors', 'retried by nginx', 'failed per reload'], rows),
    '',
    `Upstream resets in nginx's error log (\`recv() failed\`, \`prematurely closed\`), all rounds: ${resetLine || '—'}.` +
      (oursReload ? ` Ours: ${oursReload.r.resets === 0 && oursReload.r.POST.non2xx + oursReload.r.POST.errors + oursReload.r.GET.non2xx + oursReload.r.GET.errors === 0 ? '0 failed requests, 0 resets' : 'see the table'}.` : ''),
    '',
    `Stop behind nginx: two instances in one upstream, SIGTERM to one under the same load, more clients than nginx's pool, so nginx keeps opening connections to the stopping one (a refused connect is retried on the other; one the instance had accepted must be served); ${ROUNDS} stops each. ` +
      'Lost = non-2xx + socket errors + upstream resets.',
    '',
    u.mdTable(['stopped instance', 'stops', 'POST non-2xx / requests', 'GET non-2xx / requests', 'nginx resets', 'SIGTERM → exit', 'target 0'], srows)
  ].join('\n')
}

module.exports = { run }

if (require.main === module) u.runStandalone(run)
