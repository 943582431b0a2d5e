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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

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

export interface AccessEntry { status: number, method: string, upstreamStatus: string, upstreamAddr: string, requestTime: number }

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

const live = new Set<ChildProcess>()
let exitHook = false

export function nginxBinary (): string {
  for (const candidate of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { encoding: 'utf8' })
    if (probe.error === undefined && probe.status === 0) return candidate
  }
  throw new Error('nginx not found (PATH, /usr/sbin): the proxy tests need a real nginx; install it, e.g. `apt-get install nginx` (.ci/run does)')
}

const FAILURE = /recv\(\) failed|prematurely closed|reset by peer|writev\(\) failed|send\(\) failed|sendfile\(\) failed|broken pipe|upstream timed out|no live upstreams|invalid header/i

export async function startNginx (t: Teardown, options: NginxOptions): Promise<Nginx> {
  const bin = nginxBinary()
  if (!exitHook) {
    exitHook = true
    process.once('exit', () => { for (const c of live) c.kill('SIGKILL') })
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-nginx-'))
  fs.chmodSync(dir, 0o755)
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, sub))
  const errorLog = path.join(dir, 'error.log')
  const accessLog = path.join(dir, 'access.log')
  let child: ChildProcess | undefined
  let port = 0
  let output = ''

  t.teardown(async () => {
    await stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const stop = async (): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM') // nginx: fast shutdown of master and workers
    const done = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])
    if (!done) {
      try { process.kill(-(proc.pid as number), 'SIGKILL') } catch { /* gone */ }
      await exited
    }
  }

  let lastError: unknown
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await freeLoopbackPort()
    fs.writeFileSync(path.join(dir, 'nginx.conf'), config(dir, port, options))
    try {
      child = await launch(bin, dir, port, (d) => { output += d })
    } catch (err) {
      lastError = err
      // Only a port taken between probe and bind is worth another try.
      if (!/Address already in use/.test(String(err))) break
    }
  }
  if (child === undefined) throw lastError

  const read = (file: string): string => { try { return fs.readFileSync(file, 'utf8') } catch { return '' } }
  const errorLines = (): string[] => read(errorLog).split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    pid: child.pid as number,
    errorLog: () => read(errorLog) + output,
    errors: errorLines,
    upstreamFailures: () => errorLines().filter((l) => FAILURE.test(l)),
    access: () => read(accessLog).split('\n').filter(Boolean).map(parseAccess),
    stop
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
  log_format probe '$status $request_method "$upstream_status" "$upstream_addr" $request_time';
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

async function launch (bin: string, dir: string, port: number, onOutput: (d: string) => void): Promise<ChildProcess> {
  const proc = spawn(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  let out = ''
  const keep = (d: Buffer): void => { out += d.toString(); onOutput(d.toString()) }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : ''
      throw new Error(`nginx exited at start on port ${port}: ${(out + log).trim().slice(-800)}`)
    }
    if (fs.existsSync(path.join(dir, 'nginx.pid')) && await accepts(port)) return proc
    await sleep(20)
  }
  proc.kill('SIGKILL')
  throw new Error(`nginx did not listen on ${port} within 10 s: ${out.trim().slice(-800)}`)
}

function parseAccess (line: string): AccessEntry {
  const m = /^(\d+) (\S+) "([^"]*)" "([^"]*)" ([\d.]+)/.exec(line)
  if (m === null) return { status: 0, method: '', upstreamStatus: line, upstreamAddr: '', requestTime: 0 }
  return { status: Number(m[1]), method: m[2], upstreamStatus: m[3], upstreamAddr: m[4], requestTime: Number(m[5]) }
}

export function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1')
    c.once('connect', () => { c.destroy(); resolve(true) })
    c.once('error', () => resolve(false))
  })
}

export function freeLoopbackPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
}
