/**
 * A private HAProxy in front of our servers, HTTP mode with its defaults for server-side
 * connection reuse (`http-reuse safe`, idle server connections pooled), its own config and pid
 * files in a temp dir, on a free loopback port, logging one line per request on stdout. Killed in
 * teardown (and at process exit).
 *
 *   const proxy = await startHaproxy(t, { upstreams: [port] })
 *   ... load against proxy.port ...
 *   t.same(proxy.serverFailures(), [])   // requests the server side broke (termination state S*)
 *
 * No skip when HAProxy is missing: the test fails saying how to install it (`.ci/run` does).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startDaemon, systemBinary } from './daemon'

interface Teardown { teardown (fn: () => unknown): void }

export interface HaproxyOptions {
  /** Backend ports on 127.0.0.1. */
  upstreams: number[]
  /** `timeout server` (default 30s). */
  serverTimeout?: string
  /** Extra lines for the backend section. */
  backend?: string[]
}

export interface HaproxyEntry {
  status: number
  method: string
  /** HAProxy's two-letter termination state: `--` for a normal end; `S?` when the server side broke it. */
  termination: string
  retries: number
  totalMs: number
  line: string
}

export interface Haproxy {
  port: number
  url: string
  dir: string
  /** One entry per request HAProxy logged. */
  access (): HaproxyEntry[]
  /** Requests the server side ended abnormally (termination state starting with S) or that needed a retry. */
  serverFailures (): HaproxyEntry[]
  /** Everything HAProxy printed. */
  output (): string
  stop (): Promise<void>
}

export function haproxyBinary (): string {
  return systemBinary('haproxy', ['-v'], 'apt-get install haproxy')
}

export async function startHaproxy (t: Teardown, options: HaproxyOptions): Promise<Haproxy> {
  const bin = haproxyBinary()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-haproxy-'))
  const file = path.join(dir, 'haproxy.cfg')
  const daemon = await startDaemon({
    name: 'haproxy',
    prepare: (port) => {
      fs.writeFileSync(file, config(dir, port, options))
      return { bin, args: ['-db', '-f', file] }
    }
  }).catch((err) => { fs.rmSync(dir, { recursive: true, force: true }); throw err })
  t.teardown(async () => {
    await daemon.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const access = (): HaproxyEntry[] => daemon.output().split('\n').map(parseLine).filter((e): e is HaproxyEntry => e !== undefined)
  return {
    port: daemon.port,
    url: `http://127.0.0.1:${daemon.port}`,
    dir,
    access,
    serverFailures: () => access().filter((e) => e.termination.startsWith('S') || e.retries > 0),
    output: daemon.output,
    stop: daemon.stop
  }
}

function config (dir: string, port: number, o: HaproxyOptions): string {
  return `
global
  log stdout format raw local0 info
  pidfile ${dir}/haproxy.pid
  maxconn 4096

defaults
  mode http
  log global
  log-format "prodserver-log %ST %HM %ts %rc %Tt"
  timeout connect 5s
  timeout client 30s
  timeout server ${o.serverTimeout ?? '30s'}
  timeout http-keep-alive 60s

frontend web
  bind 127.0.0.1:${port}
  default_backend app

backend app
  ${(o.backend ?? []).join('\n  ')}
  ${o.upstreams.map((u, i) => `server s${i} 127.0.0.1:${u}`).join('\n  ')}
`
}

function parseLine (line: string): HaproxyEntry | undefined {
  const m = /prodserver-log (-?\d+) (\S+) (\S\S) (\d+) (\d+)/.exec(line)
  if (m === null) return undefined
  return { status: Number(m[1]), method: m[2], termination: m[3], retries: Number(m[4]), totalMs: Number(m[5]), line }
}
