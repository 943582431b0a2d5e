'use strict'
// A) Sessions: our plugin (memory, redis, file) against its anchors, in one run, back to back.
// Every server runs alone in its own child process; autocannon runs here. 50 connections, hot
// session cookie created beforehand. Routes: GET /rmw (read-modify-write), GET /read (read-only);
// then GET /rmw again spread over SPREAD_SESSIONS sessions (round-robin cookies), for reference:
// it shows what a store does when saves of one session rarely overlap (no target). Last, per
// contender, the lost-updates scenario of issue 14 (lib/lost-updates.js): a second table.
//
//   node bench/sessions.js            (BENCH_DURATION=5 seconds per measurement, BENCH_WARMUP=1)

const path = require('node:path')
const fs = require('node:fs')
const u = require('./lib/util')
const { startRedis, writesBetween } = require('./lib/redis')
const { lostUpdates, renderLost } = require('./lib/lost-updates')

const FIXTURE = path.join(__dirname, 'fixtures', 'session-server.js')
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 50)
const ROUTES = ['rmw', 'read', 'rmw-spread']
const SPREAD_SESSIONS = 50
const ROUTE_PATH = { rmw: '/rmw', read: '/read', 'rmw-spread': '/rmw' }
const routeLabel = (route) => route === 'rmw-spread' ? `GET /rmw, ${SPREAD_SESSIONS} sessions` : `GET ${ROUTE_PATH[route]}`

// Contenders of one group run at the same time (idle while another is measured) and are measured
// in interleaved slices, so drift on a noisy machine hits an "ours" and its anchor alike.
const CONTENDERS = [
  { name: 'bare', label: 'bare Fastify (no sessions)', group: 'memory' },
  { name: 'fastify-memory', label: '@fastify/session + MemoryStore', group: 'memory' },
  { name: 'ours-memory', label: 'ours, store memory', anchor: 'fastify-memory', ours: true, group: 'memory' },
  { name: 'connect-redis', label: '@fastify/session + connect-redis 8 (ioredis)', redis: true, group: 'redis' },
  { name: 'ours-redis', label: 'ours, store redis', anchor: 'connect-redis', ours: true, redis: true, group: 'redis' },
  { name: 'session-file-store', label: '@fastify/session + session-file-store', file: true, group: 'file' },
  { name: 'ours-file', label: 'ours, store file', anchor: 'session-file-store', ours: true, file: true, group: 'file' }
]

const HISTORY = 'History (before this work, same kind of machine): bare 43k rps, MemoryStore 15.8k, ' +
  'raw connect-redis 12.7k, session-file-store 418 rps (p99 212 ms).'

// File stores: which files under the session dir were created/modified/removed (mtime or size).
function snapshotDir (dir) {
  const out = new Map()
  const walk = (d) => {
    let entries = []
    try { entries = fs.readdirSync(d, { withFileTypes: true }) } catch { return }
    for (const e of entries) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else { try { const st = fs.statSync(p); out.set(p, `${st.mtimeMs}:${st.size}`) } catch {} }
    }
  }
  walk(dir)
  return out
}
function filesChanged (before, after) {
  let n = 0
  for (const [p, v] of after) if (before.get(p) !== v) n++
  for (const p of before.keys()) if (!after.has(p)) n++
  return n
}

async function startContender (c, redis) {
  const port = await u.freePort()
  const env = { CONTENDER: c.name, PORT: String(port), NODE_ENV: 'development' }
  if (c.redis) env.REDIS_URL = redis.url
  if (c.file) env.SESSION_DIR = u.makeTmpDir(`bench-sess-${c.name}-`)
  const rec = u.spawnChild(process.execPath, [FIXTURE], { env, name: c.name })
  await u.waitHttp(port, '/healthz', { rec, timeoutMs: 20000 })
  return { port, rec, dir: env.SESSION_DIR }
}

// Create the hot session and check the routes really use it.
async function prepareSession (c, port) {
  const login = await u.request(port, '/login')
  if (login.status !== 200) throw new Error(`/login answered ${login.status}: ${login.body.slice(0, 200)}`)
  if (c.name === 'bare') return {}
  const cookie = u.cookieHeader(login.headers['set-cookie'])
  if (!cookie) throw new Error('/login set no cookie')
  const headers = { cookie }
  const r1 = await u.request(port, '/read', { headers })
  if (r1.status !== 200 || JSON.parse(r1.body).user !== 'bench') throw new Error(`/read with the session cookie answered ${r1.status} ${r1.body.slice(0, 200)} (session not found?)`)
  const a = await u.request(port, '/rmw', { headers })
  const b = await u.request(port, '/rmw', { headers })
  const na = a.status === 200 && JSON.parse(a.body).n
  const nb = b.status === 200 && JSON.parse(b.body).n
  if (!(na >= 1 && nb === na + 1)) throw new Error(`/rmw does not increment the session counter (${a.status} ${a.body}; ${b.status} ${b.body})`)
  return headers
}

// SPREAD_SESSIONS more sessions, and autocannon requests that use their cookies in turn.
async function spreadRequests (port) {
  const cookies = []
  for (let i = 0; i < SPREAD_SESSIONS; i++) {
    const login = await u.request(port, '/login')
    const cookie = u.cookieHeader(login.headers['set-cookie'])
    if (login.status !== 200 || !cookie) throw new Error(`/login ${i + 1} of ${SPREAD_SESSIONS} answered ${login.status} without a cookie`)
    cookies.push(cookie)
  }
  let next = 0
  return [{
    method: 'GET',
    path: ROUTE_PATH['rmw-spread'],
    setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[next++ % cookies.length] } })
  }]
}

function fail (c, err, state) {
  const msg = String(err && err.message).split('\n')[0]
  u.log(`  ${c.name} could not run: ${err && err.message}`)
  state.errors.set(c.name, msg)
  if (c.ours) state.notRun.push(`${c.name}: ${msg}`)
  else state.problems.push(`${c.name}: ${err && err.message}`)
}

async function run () {
  const state = { errors: new Map(), problems: [], notRun: [] }
  const results = [] // { c, route, m, writes, files, warn } | { c, error }
  const lost = [] // { c, r } | { c, error }
  let redis = null
  const chosen = selected()
  // Groups measured together, interleaved: each "ours" against its anchor (and bare) in the same slices.
  const groups = [...new Set(chosen.map((c) => c.group))].map((g) => chosen.filter((c) => c.group === g))
  try {
    if (chosen.some((c) => c.redis)) {
      try {
        redis = await startRedis()
        u.log(`private redis-server on ${redis.url}`)
      } catch (err) {
        state.problems.push(`redis-server: ${err.message}`)
      }
    }
    for (const group of groups) {
      const live = [] // { c, srv, headers }
      try {
        for (const c of group) {
          if (c.redis && !redis) { state.errors.set(c.name, 'no private redis-server'); continue }
          let srv = null
          try {
            u.log(`sessions: starting ${c.name}`)
            srv = await startContender(c, redis)
            const headers = await prepareSession(c, srv.port)
            const spread = c.name === 'bare' ? undefined : await spreadRequests(srv.port)
            live.push({ c, srv, headers, spread })
          } catch (err) {
            fail(c, err, state)
            if (srv) await u.stopChild(srv.rec)
          }
        }
        for (const route of ROUTES) {
          const entries = live.filter((l) => !state.errors.has(l.c.name)).map((l) => ({
            key: l.c.name,
            url: `http://${u.HOST}:${l.srv.port}${ROUTE_PATH[route]}`,
            headers: route === 'rmw-spread' ? undefined : l.headers,
            requests: route === 'rmw-spread' ? l.spread : undefined,
            // write counting only where there is a store to count (it adds a settle pause per slice)
            before: !(l.c.redis || l.c.file) ? undefined : async () => ({
              stats: l.c.redis ? await redis.commandStats() : null,
              files: l.c.file ? snapshotDir(l.srv.dir) : null
            }),
            after: !(l.c.redis || l.c.file) ? undefined : async (b) => ({
              writes: l.c.redis ? writesBetween(b.stats, await redis.commandStats()) : null,
              files: l.c.file ? filesChanged(b.files, snapshotDir(l.srv.dir)) : null
            }),
            add: (a, x) => a == null ? x : {
              writes: x.writes && { total: a.writes.total + x.writes.total, byCommand: mergeCounts(a.writes.byCommand, x.writes.byCommand), scripts: a.writes.scripts + x.writes.scripts, dirty: a.writes.dirty + x.writes.dirty },
              files: x.files == null ? null : a.files + x.files
            }
          }))
          if (!entries.length) continue
          u.log(`sessions: measuring ${routeLabel(route)}: ${entries.map((e) => e.key).join(', ')}`)
          const ms = await u.interleaved(entries, { connections: CONNECTIONS })
          for (const [name, m] of ms) {
            const l = live.find((x) => x.c.name === name)
            if (m.failed) { fail(l.c, m.failed, state); continue }
            const writes = m.extra && m.extra.writes
            const files = m.extra ? m.extra.files : null
            u.log(`  ${name} ${routeLabel(route)}: ${Math.round(m.rps)} rps, p99 ${m.p99} ms, errors ${m.errors}, timeouts ${m.timeouts}, non2xx ${m.non2xx}` +
              (writes ? `, redis writes ${writes.total} ${JSON.stringify(writes.byCommand)} scripts ${writes.scripts} dirty ${writes.dirty}` : '') +
              (files != null ? `, session files modified ${files}` : ''))
            results.push({ c: l.c, route, m, writes, files })
          }
        }
        // the session survived the load (not rotated/lost)
        for (const l of live) {
          if (l.c.name === 'bare' || state.errors.has(l.c.name)) continue
          const after = await u.request(l.srv.port, '/read', { headers: l.headers }).catch((err) => ({ status: 0, body: err.message }))
          let ok = false
          try { ok = after.status === 200 && JSON.parse(after.body).user === 'bench' } catch {}
          if (!ok) results.filter((r) => r.c === l.c).forEach((r) => { r.warn = 'session lost after load' })
        }
        for (const l of live) {
          if (l.c.name === 'bare' || state.errors.has(l.c.name)) continue
          u.log(`sessions: lost updates, ${l.c.name}`)
          try {
            const r = await lostUpdates(l.srv.port)
            u.log(`  ${l.c.name}: different keys lost ${r.different.lost} of ${r.different.acked}, same key lost ${r.same.lost} of ${r.same.acked}, non-200 ${r.different.errors + r.same.errors}`)
            lost.push({ c: l.c, r })
          } catch (err) {
            u.log(`  ${l.c.name} lost updates could not run: ${err.message}`)
            lost.push({ c: l.c, error: err.message })
            if (!l.c.ours) state.problems.push(`${l.c.name} lost updates: ${err.message}`)
          }
        }
      } finally {
        for (const l of live) await u.stopChild(l.srv.rec)
      }
    }
  } finally {
    if (redis) await redis.stop()
  }
  for (const [name, error] of state.errors) {
    for (let k = results.length - 1; k >= 0; k--) if (results[k].c.name === name) results.splice(k, 1)
    results.push({ c: CONTENDERS.find((c) => c.name === name), error })
  }
  const rank = (r) => CONTENDERS.indexOf(r.c) * 10 + (r.route ? ROUTES.indexOf(r.route) : 0)
  results.sort((a, b) => rank(a) - rank(b))
  lost.sort((a, b) => CONTENDERS.indexOf(a.c) - CONTENDERS.indexOf(b.c))
  const markdown = render(results) + (lost.length ? '\n\n' + renderLost(lost) : '')
  return { markdown, results, lost, problems: state.problems, notRun: state.notRun }
}

function fmtWrites (w, requests) {
  const parts = Object.entries(w.byCommand).map(([k, v]) => `${k} ${v}`)
  if (w.scripts) parts.push(`in ${w.scripts} script calls`)
  const per = w.total ? `, ${(w.total / Math.max(1, requests)).toFixed(2)}/req` : ''
  return `${w.total} write cmds${parts.length ? ` (${parts.join(', ')}${per})` : ''}; ${w.dirty} dataset changes`
}

function mergeCounts (a, b) {
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] || 0) + v
  return out
}

function find (results, name, route) {
  return results.find((r) => r.c.name === name && r.route === route && r.m)
}

function verdict (r, results) {
  const c = r.c
  if (!c.ours || !target(c, r.route)) return ''
  const anchor = find(results, c.anchor, r.route)
  if (!anchor) return 'no anchor'
  const ratio = r.m.rps / anchor.m.rps
  const misses = []
  if (c.name === 'ours-memory' && ratio < 0.95) misses.push(`${ratio.toFixed(2)}× < 0.95×`)
  if (c.name === 'ours-redis') {
    if (ratio < 0.95) misses.push(`${ratio.toFixed(2)}× < 0.95×`)
    if (r.route === 'read' && r.writes && (r.writes.total > 0 || r.writes.dirty > 0)) misses.push(`${Math.max(r.writes.total, r.writes.dirty)} store writes on /read`)
  }
  if (c.name === 'ours-file') {
    if (ratio < 10) misses.push(`${ratio.toFixed(1)}× < 10×`)
    if (r.m.p99 > anchor.m.p99 / 10) misses.push(`p99 ${r.m.p99} ms > ${(anchor.m.p99 / 10).toFixed(1)} ms`)
  }
  if (r.m.errors || r.m.non2xx) misses.push(`${r.m.errors} errors, ${r.m.non2xx} non-2xx`)
  return misses.length ? `below target (${misses.join('; ')})` : 'ok'
}

function target (c, route) {
  if (route === 'rmw-spread') return ''
  return {
    'ours-memory': '≥ 0.95× MemoryStore',
    'ours-redis': '≥ 0.95× connect-redis; 0 writes on /read',
    'ours-file': '≥ 10× session-file-store; p99 ≤ 1/10'
  }[c.name] || ''
}

function render (results) {
  const rows = []
  for (const r of results) {
    if (r.error) {
      rows.push([r.c.label, '—', '—', '—', '—', '—', '—', `could not run: ${r.error.slice(0, 160)}`])
      continue
    }
    const anchor = r.c.anchor ? find(results, r.c.anchor, r.route) : null
    const bare = find(results, 'bare', r.route)
    const status = [verdict(r, results), target(r.c, r.route) && `target ${target(r.c, r.route)}`, r.warn,
      !r.c.ours && (r.m.errors || r.m.non2xx) ? `${r.m.errors} errors, ${r.m.non2xx} non-2xx` : '']
      .filter(Boolean).join('; ')
    rows.push([
      r.c.label,
      routeLabel(r.route),
      u.fmtNum(r.m.rps),
      u.fmtNum(r.m.p99, r.m.p99 < 10 ? 1 : 0),
      anchor ? u.fmtRatio(r.m.rps / anchor.m.rps) : '—',
      bare && r.c.name !== 'bare' ? u.fmtRatio(r.m.rps / bare.m.rps) : '—',
      r.files != null ? `${r.files} session file(s) modified` : r.writes ? fmtWrites(r.writes, r.m.total) : '—',
      status
    ])
  }
  return [
    `Sessions: ${CONNECTIONS} connections, hot session cookie (the last route: ${SPREAD_SESSIONS} sessions in turn, no target), each server in its own process; a contender and its anchor measured in interleaved slices (p99 = mean of the slices').`,
    '',
    u.mdTable(['contender', 'route', 'rps', 'p99 ms', 'vs anchor', 'vs bare', 'store writes during run', 'target / status'], rows),
    '',
    HISTORY
  ].join('\n')
}

function selected () {
  return u.selectContenders(CONTENDERS)
}

module.exports = { run }

if (require.main === module) u.runStandalone(run)
