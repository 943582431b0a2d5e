'use strict'
// A PRIVATE redis-server on a free loopback port (never the shared 6379), plus write counting
// from INFO commandstats.

const Redis = require('ioredis')
const { spawnChild, stopChild, freePort, sleep, tail, makeTmpDir, HOST } = require('./util')

// Commands that write session data/expiry. Scripts (EVAL/EVALSHA/FCALL) are counted apart: Redis
// counts the commands a script runs (redis.call('SET', ...)) in commandstats itself, so a write
// hidden in a script shows up here as its SET/PEXPIRE/DEL; a read-only script (GET + PTTL) is not a
// write. Ground truth on top: the server's dirty counter (rdb_changes_since_last_save), which
// counts every change to the dataset whatever command made it.
const WRITE_COMMANDS = new Set([
  'set', 'setex', 'psetex', 'setnx', 'getset', 'getex', 'mset', 'msetnx', 'del', 'unlink',
  'expire', 'pexpire', 'expireat', 'pexpireat', 'persist', 'hset', 'hmset', 'hsetnx', 'hdel',
  'append', 'incr', 'incrby', 'decr', 'rename', 'json.set'
])
const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'])

async function startRedis () {
  const port = await freePort()
  const dir = makeTmpDir('bench-redis-')
  const rec = spawnChild('redis-server', [
    '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir, '--protected-mode', 'yes'
  ], { name: 'redis-server' })
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: false })
  client.on('error', () => {})
  const t0 = Date.now()
  for (;;) {
    if (rec.exited) throw new Error(`redis-server exited: ${tail(rec.log)}`)
    try { await client.connect(); await client.ping(); break } catch {
      if (Date.now() - t0 > 10000) throw new Error(`redis-server not ready on ${port}: ${tail(rec.log)}`)
      client.disconnect()
      await sleep(100)
    }
  }
  return {
    port,
    pid: rec.child.pid,
    url: `redis://${HOST}:${port}`,
    client,
    async commandStats () {
      const info = await client.info('commandstats')
      const stats = {}
      for (const line of info.split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
        if (m) stats[m[1].toLowerCase()] = Number(m[2])
      }
      const persistence = await client.info('persistence')
      const d = /rdb_changes_since_last_save:(\d+)/.exec(persistence)
      return { stats, dirty: d ? Number(d[1]) : NaN }
    },
    async stop () {
      try { client.disconnect() } catch {}
      await stopChild(rec, 1000)
    }
  }
}

// Between two snapshots: { total (write commands), byCommand, scripts (script calls), dirty (dataset changes) }
function writesBetween (before, after) {
  const byCommand = {}
  let total = 0
  let scripts = 0
  for (const [cmd, calls] of Object.entries(after.stats)) {
    const d = calls - (before.stats[cmd] || 0)
    if (d <= 0) continue
    if (WRITE_COMMANDS.has(cmd)) { byCommand[cmd] = d; total += d }
    if (SCRIPT_COMMANDS.has(cmd)) scripts += d
  }
  return { total, byCommand, scripts, dirty: after.dirty - before.dirty }
}

module.exports = { startRedis, writesBetween, WRITE_COMMANDS }
