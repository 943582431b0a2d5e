'use strict'
// A private nginx for the benchmarks: upstream keep-alive (`keepalive 32`, HTTP/1.1,
// `Connection ""`), its own config, pid, temp and log files in a temp dir, on a free loopback port.
// The tests have their own (test/helpers/nginx.ts); this one only needs what bench/proxy.js reads.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const u = require('./util')

function nginxBinary () {
  for (const candidate of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'])
    if (!probe.error && probe.status === 0) return candidate
  }
  throw new Error('nginx not found (PATH, /usr/sbin): install it, e.g. `apt-get install nginx`')
}

// Upstream failures nginx logs when an established connection to the backend breaks.
const RESET = /recv\(\) failed|prematurely closed|reset by peer|writev\(\) failed|send\(\) failed|broken pipe/i

async function startNginx (upstreamPorts, { keepalive = 32 } = {}) {
  const bin = nginxBinary()
  const dir = u.makeTmpDir('bench-nginx-')
  fs.chmodSync(dir, 0o755)
  const port = await u.freePort()
  const user = process.getuid && process.getuid() === 0 ? 'user root;' : ''
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${dir}/${k};`).join('\n  ')
  fs.writeFileSync(path.join(dir, 'nginx.conf'), [
    user, 'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log info;`,
    'events { worker_connections 4096; }',
    'http {',
    `  log_format bench '$status $request_method "$upstream_status"';`,
    `  access_log ${dir}/access.log bench;`,
    `  ${temp}`,
    `  upstream app { ${upstreamPorts.map((p) => `server 127.0.0.1:${p};`).join(' ')} keepalive ${keepalive}; }`,
    `  server { listen 127.0.0.1:${port}; keepalive_requests 100000;`,
    '    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }',
    '}'
  ].join('\n'))
  const rec = u.spawnChild(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { name: 'nginx' })
  const read = (f) => { try { return fs.readFileSync(path.join(dir, f), 'utf8') } catch { return '' } }
  const t0 = Date.now()
  while (!fs.existsSync(path.join(dir, 'nginx.pid'))) {
    if (rec.exited || Date.now() - t0 > 10000) throw new Error(`nginx did not start: ${u.tail(rec.log + read('error.log'))}`)
    await u.sleep(20)
  }
  await u.waitHttp(port, '/pid', { rec })
  return {
    port,
    // Established upstream connections that broke under nginx (POSTs become 502s; GETs retried).
    resets: () => read('error.log').split('\n').filter((l) => /\[(error|crit)\]/.test(l) && /upstream/.test(l) && RESET.test(l)).length,
    // Requests nginx retried on another connection without telling the client ("502, 200").
    retried: () => read('access.log').split('\n').filter((l) => /"[^"]*,[^"]*"/.test(l)).length,
    stop: () => u.stopChild(rec, 2000)
  }
}

module.exports = { startNginx }
