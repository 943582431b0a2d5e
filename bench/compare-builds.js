'use strict'
// Our own store against an earlier build of it, in one run: how much a change costs, told apart
// from the anchors' run-to-run swings (session-file-store's /rmw moved between 318 and 714 rps in
// two runs of the same day, and our ratio to it with it).
//
//   node bench/compare-builds.js <git revision> [more revisions…]
//
// Each revision is extracted with `git archive` into a temp directory, given this checkout's
// node_modules and built with tsc; then this checkout's dist/ (run `npm run build` first) and each
// build serve bench/fixtures/session-server.js (each its own copy) in their own process, and
// autocannon measures them in interleaved slices (bench/lib/util.js). Prints rps, p99 and server
// CPU per request of each, and the ratio to this checkout.
// Env: CONTENDER (ours-file | ours-memory | ours-redis; default ours-file; redis needs REDIS_URL),
//      ROUTE (/rmw | /read; default /rmw), BENCH_DURATION (default 5), BENCH_CONNECTIONS (50),
//      ROUNDS (repeats of the whole comparison, default 3).

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const u = require('./lib/util')

const CONTENDER = process.env.CONTENDER || 'ours-file'
const ROUTE = process.env.ROUTE || '/rmw'
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 50)
const ROUNDS = Number(process.env.ROUNDS || 3)
const CONTENDERS = ['ours-file', 'ours-memory', 'ours-redis']
const ROUTES = ['/rmw', '/read']

/** The build of `rev`, in a temp directory: the path of its root. */
function buildRevision (rev) {
  const root = u.makeTmpDir(`bench-build-${rev.replace(/[^\w.-]/g, '_')}-`)
  const archive = execFileSync('git', ['archive', '--format=tar', rev], { cwd: u.ROOT, maxBuffer: 256 * 1024 * 1024 })
  execFileSync('tar', ['-x', '-C', root], { input: archive })
  fs.symlinkSync(path.join(u.ROOT, 'node_modules'), path.join(root, 'node_modules'))
  execFileSync(process.execPath, [path.join(u.ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' })
  return root
}

/** CPU time (ms) a process has used so far, from /proc. */
function cpuMs (pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / 100 // utime + stime, in clock ticks of 10 ms
}

async function serve (key, root) {
  const port = await u.freePort()
  const env = { CONTENDER, PORT: String(port), NODE_ENV: 'development', SESSION_DIR: u.makeTmpDir(`bench-compare-${key}-`) }
  const rec = u.spawnChild(process.execPath, [path.join(root, 'bench', 'fixtures', 'session-server.js')], { env, name: key })
  await u.waitHttp(port, '/healthz', { rec, timeoutMs: 20000 })
  const login = await u.request(port, '/login')
  const cookie = u.cookieHeader(login.headers['set-cookie'])
  if (login.status !== 200 || !cookie) throw new Error(`${key}: /login answered ${login.status} without a cookie`)
  const pid = rec.child.pid
  return {
    key,
    url: `http://${u.HOST}:${port}${ROUTE}`,
    headers: { cookie },
    before: async () => cpuMs(pid),
    after: async (startMs) => cpuMs(pid) - startMs,
    add: (sum, ms) => (sum ?? 0) + ms
  }
}

async function main () {
  const revs = process.argv.slice(2)
  if (revs.length === 0 || !CONTENDERS.includes(CONTENDER) || !ROUTES.includes(ROUTE)) {
    console.error(`usage: node bench/compare-builds.js <git revision>… (CONTENDER: ${CONTENDERS.join(' | ')}; ROUTE: ${ROUTES.join(' | ')})`)
    process.exitCode = 2
    return
  }
  if (!fs.existsSync(path.join(u.ROOT, 'dist', 'index.js'))) throw new Error('dist/ missing: run `npm run build` first')
  const builds = [['this checkout', u.ROOT], ...revs.map((rev) => [rev, buildRevision(rev)])]
  const entries = []
  for (const [key, root] of builds) entries.push(await serve(key, root))
  const rows = []
  for (let round = 1; round <= ROUNDS; round++) {
    u.log(`round ${round}/${ROUNDS}: ${builds.map(([key]) => key).join(', ')}`)
    const out = await u.interleaved(entries, { connections: CONNECTIONS })
    const base = out.get(entries[0].key)
    for (const e of entries) {
      const r = out.get(e.key)
      if (r.failed) throw r.failed
      rows.push([String(round), e.key, u.fmtNum(r.rps), u.fmtNum(r.p99, 1), (r.extra * 1000 / r.total).toFixed(0), e === entries[0] ? '1.00× (base)' : u.fmtRatio(r.rps / base.rps), String(r.non2xx + r.errors)])
    }
  }
  console.log(`Machine: ${u.machineLine()}`)
  console.log(`Command: \`node bench/compare-builds.js ${revs.join(' ')}\` (CONTENDER=${CONTENDER}, ROUTE=${ROUTE}, ${CONNECTIONS} connections, ${u.DURATION} s per build and round in interleaved slices)\n`)
  console.log(u.mdTable(['round', 'build', 'rps', 'p99 ms', 'server CPU µs/request', 'rps vs this checkout', 'failed'], rows))
}

main().catch((err) => {
  console.error(err && err.stack)
  process.exitCode = 1
}).finally(() => u.cleanupAll())
