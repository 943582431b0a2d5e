/**
 * wrk as the load generator of the proxy and crash tests: a real third-party HTTP/1.1 client.
 *
 *   const run = startWrk({ url, seconds: 4, connections: 20, method: 'POST' })
 *   ... signals while it runs ...
 *   const r = await run.done     // { requests, non2xx, errors: { connect, read, write, timeout }, … }
 *
 * `fresh: true` sends `Connection: close`, so every request comes on a new connection (wrk
 * reconnects after each response): new-connection load. `timeoutS` is wrk's per-request timeout;
 * a request unanswered that long is counted in `errors.timeout` every 2 s while it stays stuck
 * (so keep wrk running at least timeoutS + 2 s after the moment under test). `stop()` ends a long
 * run early, with its summary.
 * Missing wrk fails the test (no skip); `.ci/run` installs it.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface WrkOptions {
  url: string
  seconds: number
  connections?: number
  threads?: number
  method?: 'GET' | 'POST'
  /** Request body for POST (default: a small JSON document). */
  body?: string
  fresh?: boolean
  timeoutS?: number
}

export interface WrkResult {
  requests: number
  /** Responses with a status outside 2xx/3xx. */
  non2xx: number
  errors: { connect: number, read: number, write: number, timeout: number }
  maxLatencyMs: number
  output: string
}

export interface WrkRun {
  done: Promise<WrkResult>
  pid: number
  /** Ends the run now (SIGINT: wrk stops and prints its summary). */
  stop (): Promise<WrkResult>
}

export function wrkBinary (): string {
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' })
  // wrk --version exits 1 after printing its banner
  if (probe.error !== undefined || !/wrk/i.test(`${probe.stdout}${probe.stderr}`)) {
    throw new Error('wrk not found on PATH: the proxy and crash tests need it; install it, e.g. `apt-get install wrk` (.ci/run does)')
  }
  return 'wrk'
}

export function startWrk (o: WrkOptions): WrkRun {
  const bin = wrkBinary()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-wrk-'))
  const script = path.join(dir, 'load.lua')
  const body = o.body ?? JSON.stringify({ hello: 'world', n: 42 })
  fs.writeFileSync(script, [
    `wrk.method = ${JSON.stringify(o.method ?? 'GET')}`,
    o.method === 'POST' ? `wrk.body = ${JSON.stringify(body)}` : '',
    o.method === 'POST' ? 'wrk.headers["Content-Type"] = "application/json"' : '',
    o.fresh === true ? 'wrk.headers["Connection"] = "close"' : ''
  ].join('\n'))
  const connections = o.connections ?? 20
  const args = ['-t', String(o.threads ?? Math.min(2, connections)), '-c', String(connections), '-d', `${o.seconds}s`,
    '--timeout', `${o.timeoutS ?? 5}s`, '--latency', '-s', script, o.url]
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const done = new Promise<WrkResult>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => {
      fs.rmSync(dir, { recursive: true, force: true })
      if (code !== 0) return reject(new Error(`wrk exited ${String(code)}: ${out}`))
      resolve(parseWrk(out))
    })
  })
  return {
    done,
    pid: child.pid as number,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      return done
    }
  }
}

export function parseWrk (out: string): WrkResult {
  const num = (re: RegExp): number => { const m = re.exec(out); return m === null ? 0 : Number(m[1]) }
  const requests = num(/(\d+) requests in /)
  if (!/ requests in /.test(out)) throw new Error(`wrk printed no summary: ${out}`)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const errors = sock === null ? { connect: 0, read: 0, write: 0, timeout: 0 } : { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
  const lat = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b/.exec(out)
  const maxLatencyMs = lat === null ? 0 : Number(lat[1]) * (lat[2] === 'us' ? 0.001 : lat[2] === 's' ? 1000 : 1)
  return { requests, non2xx: num(/Non-2xx or 3xx responses: (\d+)/), errors, maxLatencyMs, output: out }
}
