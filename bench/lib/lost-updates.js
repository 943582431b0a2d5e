'use strict'
// Lost updates (issue 14): what each session layer keeps when one user's requests overlap.
// One fresh session per case; LOOPS client loops run in parallel, each on its own keep-alive
// connection, each sending INCREMENTS requests of GET /inc (read a key, wait 1 ms for I/O, write
// key + 1; bench/fixtures/session-server.js). Then one read-back.
//   different keys: loop i increments only key k<i>  → every acknowledged increment must be there
//   same key:       every loop increments one key   → the last writer wins for that key (ours too)
// Lost = increments acknowledged with a 200 − increments found in the session. Not a speed figure.

const http = require('node:http')
const u = require('./util')

const LOOPS = 10
const INCREMENTS = 50

async function login (port) {
  const res = await u.request(port, '/login')
  const cookie = u.cookieHeader(res.headers['set-cookie'])
  if (res.status !== 200 || !cookie) throw new Error(`/login answered ${res.status} without a cookie`)
  return { cookie }
}

async function values (port, headers, keys) {
  const res = await u.request(port, `/values?keys=${keys.join(',')}`, { headers, timeout: 10000 })
  if (res.status !== 200) throw new Error(`/values answered ${res.status}: ${res.body.slice(0, 200)}`)
  return JSON.parse(res.body)
}

// LOOPS parallel loops; keyOf(i) is the key loop i increments. Returns { acked, errors } per key.
async function parallelIncrements (port, headers, keyOf) {
  const acked = new Map()
  let errors = 0
  const t0 = Date.now()
  await Promise.all(Array.from({ length: LOOPS }, async (_, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const key = keyOf(i)
    try {
      for (let n = 0; n < INCREMENTS; n++) {
        const res = await u.request(port, `/inc?key=${key}`, { headers, agent, timeout: 10000 }).catch(() => ({ status: 0 }))
        if (res.status === 200) acked.set(key, (acked.get(key) || 0) + 1)
        else errors++
      }
    } finally { agent.destroy() }
  }))
  return { acked, errors, ms: Date.now() - t0 }
}

async function runCase (port, keyOf) {
  const headers = await login(port)
  const { acked, errors, ms } = await parallelIncrements(port, headers, keyOf)
  const keys = [...new Set(Array.from({ length: LOOPS }, (_, i) => keyOf(i)))]
  const got = await values(port, headers, ['user', ...keys])
  let ackedTotal = 0
  let found = 0
  for (const k of keys) {
    ackedTotal += acked.get(k) || 0
    found += Number(got[k]) || 0
  }
  return { acked: ackedTotal, found, lost: ackedTotal - found, errors, ms, sessionKept: got.user === 'bench' }
}

// Both cases against one running contender.
async function lostUpdates (port) {
  return {
    different: await runCase(port, (i) => `k${i}`),
    same: await runCase(port, () => 'shared')
  }
}

function fmtCase (r) {
  const pct = r.acked ? ` (${(100 * r.lost / r.acked).toFixed(1)}%)` : ''
  return `${r.lost} of ${r.acked}${pct}`
}

// rows: [{ c, r } | { c, error }] in contender order.
function renderLost (rows) {
  const body = rows.map(({ c, r, error }) => error
    ? [c.label, '—', '—', '—', `could not run: ${String(error).slice(0, 160)}`]
    : [
        c.label,
        fmtCase(r.different),
        fmtCase(r.same),
        `${r.different.ms + r.same.ms} ms`,
        [c.ours ? (r.different.lost === 0 && r.different.acked > 0 ? 'ok; target 0 lost on different keys' : 'below target (different keys lost updates)') : '',
          r.different.errors + r.same.errors ? `${r.different.errors + r.same.errors} non-200 answers` : '',
          r.different.sessionKept && r.same.sessionKept ? '' : 'session lost'].filter(Boolean).join('; ')
      ])
  return [
    `Lost updates, parallel requests of one user: one session, ${LOOPS} client loops in parallel, each on its own keep-alive connection, ${INCREMENTS} increments each (read, 1 ms of I/O, write); lost = increments answered 200 − increments found in the session afterwards. Different keys: loop i increments only its own key (nothing may be lost). Same key: all loops increment one key (the last writer wins for that key, for us too).`,
    '',
    u.mdTable(['contender', 'different keys: lost', 'same key: lost', 'time (both cases)', 'target / status'], body)
  ].join('\n')
}

module.exports = { lostUpdates, renderLost, LOOPS, INCREMENTS }
