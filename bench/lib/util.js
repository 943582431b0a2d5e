'use strict'
// Shared harness helpers: free ports, child processes in their own process group (always killed),
// HTTP probes, autocannon runs, Markdown tables. Loopback only.

const { spawn } = require('node:child_process')
const net = require('node:net')
const http = require('node:http')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const autocannon = require('autocannon')

const HOST = '127.0.0.1'
const ROOT = path.resolve(__dirname, '..', '..')

const DURATION = Number(process.env.BENCH_DURATION || 5)
const WARMUP = Number(process.env.BENCH_WARMUP || 1)

function sleep (ms) { return new Promise((resolve) => setTimeout(resolve, ms)) }

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

// ---- child processes: each in its own process group, tracked, killed on exit -------------

const children = new Set()
let tmpDirs = []
const cleanups = [] // async functions (pm2 kill, ...)

function spawnChild (cmd, args, opts = {}) {
  const env = { ...process.env, ...opts.env }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  const child = spawn(cmd, args, {
    cwd: opts.cwd || ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true // own process group: kill(-pid) reaches workers too
  })
  const rec = { child, name: opts.name || path.basename(String(args[0] || cmd)), log: '', exited: false, code: null, signal: null, startedAt: Date.now(), readyLogAt: null }
  const keep = (buf) => {
    if (opts.readyLog && rec.readyLogAt == null && opts.readyLog.test(rec.log.slice(-4096) + buf.toString())) rec.readyLogAt = Date.now()
    rec.log += buf.toString()
    if (rec.log.length > 64 * 1024) rec.log = rec.log.slice(-32 * 1024)
    if (opts.onData) opts.onData(buf.toString())
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  rec.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      rec.exited = true; rec.code = code; rec.signal = signal
      resolve()
    })
    child.on('error', (err) => { rec.log += `\nspawn error: ${err.message}`; rec.exited = true; resolve() })
  })
  children.add(rec)
  return rec
}

function killGroup (rec, signal = 'SIGKILL') {
  if (!rec || !rec.child.pid) return
  try { process.kill(-rec.child.pid, signal) } catch {}
  try { rec.child.kill(signal) } catch {}
}

async function stopChild (rec, graceMs = 1500) {
  if (!rec) return
  if (!rec.exited) {
    killGroup(rec, 'SIGTERM')
    await Promise.race([rec.exitPromise, sleep(graceMs)])
  }
  // the whole group, even when the leader is gone (orphaned workers)
  killGroup(rec, 'SIGKILL')
  await Promise.race([rec.exitPromise, sleep(500)])
  children.delete(rec)
}

function makeTmpDir (prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tmpDirs.push(dir)
  return dir
}

function onCleanup (fn) { cleanups.push(fn) }

async function cleanupAll () {
  for (const fn of cleanups.splice(0).reverse()) {
    try { await fn() } catch (err) { process.stderr.write(`cleanup: ${err.message}\n`) }
  }
  for (const rec of [...children]) await stopChild(rec, 500)
  for (const dir of tmpDirs) { try { fs.rmSync(dir, { recursive: true, force: true }) } catch {} }
  tmpDirs = []
}

function cleanupSync () {
  for (const rec of children) killGroup(rec, 'SIGKILL')
}
process.on('exit', cleanupSync)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanupAll().finally(() => process.exit(130))
  })
}

// ---- HTTP ---------------------------------------------------------------------------------

function request (port, pathname, { method = 'GET', headers = {}, timeout = 2000, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path: pathname, method, headers, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.setTimeout(timeout, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

// Poll until `pathname` answers 2xx; throw (with the child's log) on timeout or early exit.
async function waitHttp (port, pathname, { timeoutMs = 20000, rec } = {}) {
  const t0 = Date.now()
  let lastErr
  while (Date.now() - t0 < timeoutMs) {
    if (rec && rec.exited) throw new Error(`${rec.name} exited (code ${rec.code}, signal ${rec.signal}) before ready: ${errorLine(rec.log)}\n${tail(rec.log)}`)
    try {
      const res = await request(port, pathname, { timeout: 1000 })
      if (res.status >= 200 && res.status < 300) return res
      lastErr = new Error(`status ${res.status}: ${res.body.slice(0, 200)}`)
    } catch (err) { lastErr = err }
    await sleep(50)
  }
  throw new Error(`not ready on :${port}${pathname} after ${timeoutMs} ms (${lastErr && lastErr.message})${rec ? '; log: ' + errorLine(rec.log) + '\n' + tail(rec.log) : ''}`)
}

function tail (s, n = 15) { return String(s || '').trim().split('\n').slice(-n).join('\n') }

// The most telling line of a child's log: its first error line, else its last line.
function errorLine (s) {
  const lines = String(s || '').trim().split('\n').map((l) => l.trim()).filter(Boolean)
  const err = lines.find((l) => !/^at /.test(l) && (/\b\w*(Error|Exception)\b/.test(l) || /\berror\b/i.test(l) || /"level":(50|60)/.test(l)))
  return (err || lines[lines.length - 1] || 'no output').slice(0, 300)
}

// "a=1; Path=/; HttpOnly" list → "a=1; b=2"
function cookieHeader (setCookie) {
  const list = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []
  return list.map((c) => c.split(';')[0]).join('; ')
}

// ---- autocannon ---------------------------------------------------------------------------

function cannon (opts) {
  return new Promise((resolve, reject) => {
    const inst = autocannon({ timeout: 10, ...opts }, (err, result) => err ? reject(err) : resolve(result))
    if (opts.onInstance) opts.onInstance(inst)
  })
}

// 1 s warm-up then the measured run. Returns { rps, p99, p50, errors, timeouts, non2xx, total }
async function measure (url, { connections = 50, headers, duration = DURATION, warmup = WARMUP } = {}) {
  if (warmup > 0) await cannon({ url, connections, headers, duration: warmup })
  const r = await cannon({ url, connections, headers, duration })
  return summarize(r)
}

// Interleaved measurement of several live servers (drift on a noisy machine hits all alike):
// one warm-up each, then SLICES rounds, each contender measured DURATION/SLICES seconds per
// round, order reversed every other round. rps = all requests / all measured time; p99 = mean of
// the slices' p99. Each entry: { key, url, headers, requests?, connections, before?(), after?(state) }.
// Returns Map key → summary (+ extra: whatever after() returned, accumulated by add()).
const SLICES = Math.max(1, Number(process.env.BENCH_SLICES || 4))

async function interleaved (entries, { connections = 50, duration = DURATION, warmup = WARMUP, slices = SLICES } = {}) {
  const acc = new Map()
  for (const e of entries) {
    acc.set(e.key, { total: 0, seconds: 0, errors: 0, timeouts: 0, non2xx: 0, p99s: [], p50s: [], extra: null, failed: null })
    if (warmup > 0) {
      try { await cannon({ url: e.url, connections: e.connections || connections, headers: e.headers, requests: e.requests, duration: warmup }) } catch (err) { acc.get(e.key).failed = err }
    }
  }
  const slice = duration / slices
  for (let i = 0; i < slices; i++) {
    const order = i % 2 === 0 ? entries : [...entries].reverse()
    for (const e of order) {
      const a = acc.get(e.key)
      if (a.failed) continue
      try {
        const state = e.before ? await e.before() : null
        const r = await cannon({ url: e.url, connections: e.connections || connections, headers: e.headers, requests: e.requests, duration: slice })
        // requests still in flight when autocannon stopped land in this slice, not the next one's
        if (e.after) await sleep(250)
        const extra = e.after ? await e.after(state) : null
        a.total += r.requests.total
        a.seconds += r.duration
        a.errors += r.errors; a.timeouts += r.timeouts; a.non2xx += r.non2xx
        a.p99s.push(r.latency.p99); a.p50s.push(r.latency.p50)
        if (extra != null) a.extra = e.add ? e.add(a.extra, extra) : extra
      } catch (err) { a.failed = err }
    }
  }
  const out = new Map()
  const mean = (xs) => xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN
  for (const [key, a] of acc) {
    out.set(key, {
      rps: a.seconds ? a.total / a.seconds : NaN,
      p99: mean(a.p99s),
      p50: mean(a.p50s),
      errors: a.errors,
      timeouts: a.timeouts,
      non2xx: a.non2xx,
      total: a.total,
      duration: a.seconds,
      extra: a.extra,
      failed: a.failed
    })
  }
  return out
}

function summarize (r) {
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    total: r.requests.total,
    duration: r.duration
  }
}

// ---- output -------------------------------------------------------------------------------

function mdTable (headers, rows) {
  const esc = (v) => String(v == null ? '' : v).replace(/\|/g, '\\|')
  const lines = [
    '| ' + headers.map(esc).join(' | ') + ' |',
    '|' + headers.map(() => '---').join('|') + '|'
  ]
  for (const row of rows) lines.push('| ' + row.map(esc).join(' | ') + ' |')
  return lines.join('\n')
}

function fmtNum (n, digits = 0) {
  if (n == null || Number.isNaN(n)) return '—'
  return Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function fmtRatio (r) { return r == null || !Number.isFinite(r) ? '—' : r.toFixed(2) + '×' }

function machineLine () {
  const cpus = os.cpus()
  const model = cpus.length ? cpus[0].model.trim() : 'unknown cpu'
  return `Node ${process.version}, ${os.platform()} ${os.release()}, ${cpus.length}× ${model}, ` +
    `${Math.round(os.totalmem() / 1024 / 1024)} MB RAM, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (1/5/15 min, at the end), ${new Date().toISOString()}; ` +
    `${DURATION} s per measurement (in ${SLICES} interleaved slices) after ${WARMUP} s warm-up`
}

const T0 = Date.now()
function log (msg) { process.stderr.write(`[bench +${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`) }

// BENCH_ONLY=ours-memory,fastify-memory runs a subset (while iterating); otherwise every contender
// not marked `extra` (BENCH_EXTRA=1 adds those).
function selectContenders (contenders) {
  const only = (process.env.BENCH_ONLY || '').split(',').map((s) => s.trim()).filter(Boolean)
  if (only.length) return contenders.filter((c) => only.includes(c.name))
  return contenders.filter((c) => !c.extra || process.env.BENCH_EXTRA === '1')
}

// `node bench/<half>.js` on its own: run, print the Markdown, report what could not run.
function runStandalone (run) {
  run().then((out) => {
    console.log(out.markdown)
    if (out.notRun.length) console.log('\nCould not run yet:\n' + out.notRun.map((s) => `- ${s}`).join('\n'))
    if (out.problems.length) { console.error('\nHarness errors:\n' + out.problems.join('\n')); process.exitCode = 1 }
  }, (err) => {
    console.error(err && err.stack)
    process.exitCode = 1
  }).finally(() => cleanupAll())
}

module.exports = {
  selectContenders,
  runStandalone,
  HOST,
  ROOT,
  DURATION,
  WARMUP,
  sleep,
  freePort,
  spawnChild,
  stopChild,
  killGroup,
  makeTmpDir,
  onCleanup,
  cleanupAll,
  request,
  waitHttp,
  tail,
  errorLine,
  cookieHeader,
  cannon,
  measure,
  interleaved,
  SLICES,
  summarize,
  mdTable,
  fmtNum,
  fmtRatio,
  machineLine,
  log
}
