/**
 * A private nginx in front of our servers, the way operators run it: upstream keep-alive on
 * (`keepalive 32`, HTTP/1.1, `Connection ""`), its own config, pid, temp and log files in a temp
 * dir, on a free loopback port. Killed in teardown (and at process exit).
 *
 *   const proxy = await startNginx(t, { upstreams: [port] })
 *   ... load against proxy.port ...
 *   t.same(proxy.upstreamFailures(), [])   // resets / premature closes seen by nginx
 *
 * There is deliberately no "skip when missing": the proxy tests fail with a message saying how to
 * install nginx (`.ci/run` installs it).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startDaemon, systemBinary } from './daemon'

interface Teardown { teardown (fn: () => unknown): void }

export interface NginxOptions {
  /** Backend ports on 127.0.0.1 (or unix socket paths); one `server` line each. */
  upstreams: Array<number | string>
  /** Idle connections nginx keeps per worker process (`keepalive`); 0 turns upstream keep-alive off. */
  keepalive?: number
  /** `keepalive_timeout` of the upstream cache (nginx's default: 60s). */
  keepaliveTimeout?: string
  /** `proxy_read_timeout` (default 60s). */
  readTimeout?: string
  /** nginx worker processes (default 1: one keep-alive cache, deterministic reuse order). */
  workerProcesses?: number
  /** Extra lines inside `location /`. */
  location?: string[]
}

export interface AccessEntry {
  status: number
  method: string
  upstreamStatus: string
  upstreamAddr: string
  /** Seconds. */
  requestTime: number
  /** When nginx logged it (epoch ms). */
  at: number
}

export interface Nginx {
  port: number
  url: string
  dir: string
  pid: number
  /** The whole error log so far. */
  errorLog (): string
  /** Error-log lines of level error or worse. */
  errors (): string[]
  /**
   * Error-log lines where an established upstream connection failed under nginx: reset, closed
   * before the response, write failures, timeouts. (Not `connect() failed`: a refused connect is
   * retried on the next upstream even for POST, nothing was sent.)
   */
  upstreamFailures (): string[]
  /** Parsed access log: one entry per request nginx answered. */
  access (): AccessEntry[]
  stop (): Promise<void>
}

export function nginxBinary (): string {
  return systemBinary('nginx', ['-v'], 'apt-get install nginx')
}

const FAILURE = /recv\(\) failed|prematurely closed|reset by peer|writev\(\) failed|send\(\) failed|sendfile\(\) failed|broken pipe|upstream timed out|no live upstreams|invalid header/i

export async function startNginx (t: Teardown, options: NginxOptions): Promise<Nginx> {
  const bin = nginxBinary()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-nginx-'))
  fs.chmodSync(dir, 0o755)
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, sub))
  const errorLog = path.join(dir, 'error.log')
  const accessLog = path.join(dir, 'access.log')
  const read = (file: string): string => { try { return fs.readFileSync(file, 'utf8') } catch { return '' } }
  const conf = path.join(dir, 'nginx.conf')
  const daemon = await startDaemon({
    name: 'nginx',
    prepare: (port) => {
      fs.writeFileSync(conf, config(dir, port, options))
      return { bin, args: ['-p', dir, '-c', conf, '-e', errorLog] }
    },
    ready: () => fs.existsSync(path.join(dir, 'nginx.pid')),
    diagnostics: () => read(errorLog)
  }).catch((err) => { fs.rmSync(dir, { recursive: true, force: true }); throw err })
  t.teardown(async () => {
    await daemon.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const errorLines = (): string[] => read(errorLog).split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))
  return {
    port: daemon.port,
    url: `http://127.0.0.1:${daemon.port}`,
    dir,
    pid: daemon.proc.pid as number,
    errorLog: () => read(errorLog) + daemon.output(),
    errors: errorLines,
    upstreamFailures: () => errorLines().filter((l) => FAILURE.test(l)),
    access: () => read(accessLog).split('\n').filter(Boolean).map(parseAccess),
    stop: daemon.stop
  }
}

function config (dir: string, port: number, o: NginxOptions): string {
  const keepalive = o.keepalive ?? 32
  const servers = o.upstreams.map((u) => typeof u === 'number' ? `server 127.0.0.1:${u};` : `server unix:${u};`)
  const user = process.getuid?.() === 0 ? 'user root;' : ''
  return `
${user}
daemon off;
master_process on;
worker_processes ${o.workerProcesses ?? 1};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 4096; }
http {
  log_format probe '$status $request_method "$upstream_status" "$upstream_addr" $request_time $msec';
  access_log ${dir}/access.log probe;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app {
    ${servers.join('\n    ')}
    ${keepalive > 0 ? `keepalive ${keepalive};` : ''}
    ${keepalive > 0 && o.keepaliveTimeout !== undefined ? `keepalive_timeout ${o.keepaliveTimeout};` : ''}
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 100000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout ${o.readTimeout ?? '60s'};
      ${(o.location ?? []).join('\n      ')}
    }
  }
}
`
}

function parseAccess (line: string): AccessEntry {
  const m = /^(\d+) (\S+) "([^"]*)" "([^"]*)" ([\d.]+) ([\d.]+)/.exec(line)
  if (m === null) return { status: 0, method: '', upstreamStatus: line, upstreamAddr: '', requestTime: 0, at: 0 }
  return { status: Number(m[1]), method: m[2], upstreamStatus: m[3], upstreamAddr: m[4], requestTime: Number(m[5]), at: Math.round(Number(m[6]) * 1000) }
}
