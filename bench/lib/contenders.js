'use strict'
// What the launcher and proxy benchmarks share about their contenders: a clean environment for
// every child, waiting until all workers answer, and a PM2 daemon of our own (PM2_HOME in a temp
// dir), killed at cleanup.

const path = require('node:path')
const fs = require('node:fs')
const u = require('./util')

const PM2_BIN = path.join(u.ROOT, 'node_modules', '.bin', 'pm2')
const FIXTURES = path.join(u.ROOT, 'bench', 'fixtures')
// Our CLI, the app every contender serves, and that app in a bare Fastify process (PM2's) or
// under plain node:cluster.
const CLI = path.join(u.ROOT, 'dist', 'lib', 'cli.js')
const APP = path.join(FIXTURES, 'cpu-app.js')
const PLAIN = path.join(FIXTURES, 'plain-server.js')
const NODE_CLUSTER = path.join(FIXTURES, 'node-cluster.js')

// Knob variables that would change the plan behind our back: the child gets none of them.
function cleanEnv (extra = {}) {
  const env = { NODE_ENV: 'production', ...extra }
  for (const k of Object.keys(process.env)) {
    if (/^(PRODSERVER_|SESSION_|WAITRESS_)/.test(k) || ['WORKERS', 'WEB_CONCURRENCY', 'THREADS', 'HOST', 'PORT', 'CHANNEL_TIMEOUT', 'CONNECTION_LIMIT', 'BACKLOG', 'WORKER_MEMORY_MB', 'REDIS_URL', 'NODE_OPTIONS'].includes(k)) {
      if (!(k in extra)) env[k] = undefined
    }
  }
  return env
}

// Spawn → first answer → `workers` distinct pids answering on fresh connections.
async function waitAllReady (port, workers, t0, rec, timeoutMs = 30000) {
  const pids = new Set()
  let firstMs = null
  let lastErr = null
  while (Date.now() - t0 < timeoutMs) {
    if (rec && rec.exited) throw new Error(`${rec.name} exited (code ${rec.code}, signal ${rec.signal}) before ready: ${u.errorLine(rec.log)}\n${u.tail(rec.log)}`)
    try {
      const res = await u.request(port, '/pid', { timeout: 1000 })
      if (res.status === 200) {
        if (firstMs == null) firstMs = Date.now() - t0
        pids.add(JSON.parse(res.body).pid)
        if (pids.size >= workers) return { firstMs, allMs: Date.now() - t0, pids: [...pids] }
        continue
      }
      lastErr = new Error(`status ${res.status}`)
    } catch (err) { lastErr = err }
    await u.sleep(20)
  }
  throw new Error(`not all ${workers} workers answered within ${timeoutMs} ms (saw ${pids.size}; ${lastErr && lastErr.message})${rec ? '; log: ' + u.errorLine(rec.log) + '\n' + u.tail(rec.log) : ''}`)
}

async function samplePids (port, n = 12) {
  const pids = new Set()
  for (let i = 0; i < n; i++) {
    try {
      const res = await u.request(port, '/pid', { timeout: 1000 })
      if (res.status === 200) pids.add(JSON.parse(res.body).pid)
    } catch {}
  }
  return pids
}

// One PM2 daemon per call, with its own home; `run(args)` runs a pm2 command against it, `kill()`
// stops the daemon (also registered as a cleanup). PORT goes to the apps PM2 starts.
function pm2Daemon (port) {
  const home = u.makeTmpDir('bench-pm2-')
  const run = (args, timeoutMs = 30000) => {
    const rec = u.spawnChild(PM2_BIN, args, { env: cleanEnv({ PM2_HOME: home, PORT: String(port) }), name: `pm2 ${args[0]}` })
    return Promise.race([
      rec.exitPromise.then(() => {
        if (rec.code !== 0) throw new Error(`pm2 ${args.join(' ')} exited ${rec.code}: ${u.tail(rec.log)}`)
        return rec.log
      }),
      u.sleep(timeoutMs).then(() => { u.killGroup(rec); throw new Error(`pm2 ${args.join(' ')} timed out`) })
    ])
  }
  let killed = false
  const kill = async () => {
    if (killed) return
    killed = true
    try { await run(['kill'], 15000) } catch (err) { u.log(`pm2 kill: ${err.message}`) }
    // belt and braces: the daemon's pid file
    try {
      const pid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'))
      if (pid) { try { process.kill(-pid, 'SIGKILL') } catch {} try { process.kill(pid, 'SIGKILL') } catch {} }
    } catch {}
  }
  u.onCleanup(kill)
  return { run, kill }
}

module.exports = { CLI, APP, PLAIN, NODE_CLUSTER, cleanEnv, waitAllReady, samplePids, pm2Daemon }
