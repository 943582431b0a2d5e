/**
 * Real processes for the launcher tests: spawn a server in its own process group, read its JSON
 * log lines, wait for a line or for the exit, and always kill the whole group at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import http from 'node:http'
import path from 'node:path'

export const ROOT = path.resolve(__dirname, '..', '..')
export const FIXTURES = path.join(ROOT, 'test', 'fixtures')

export interface LogLine { msg?: string, [key: string]: unknown }

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface ServerProcess {
  child: ChildProcess
  pid: number
  /** Every JSON line printed on stdout so far. */
  lines: LogLine[]
  stdout (): string
  stderr (): string
  /** Resolves with the first line (already printed or future) that matches. */
  waitLine (match: string | ((l: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>
  /** Resolves once `count` matching lines were printed. */
  waitLines (match: string | ((l: LogLine) => boolean), count: number, timeoutMs?: number): Promise<LogLine[]>
  waitExit (timeoutMs?: number): Promise<Exit>
  exited (): Exit | undefined
  signal (sig: NodeJS.Signals): void
  /** Signal to the whole process group (what Ctrl-C does). */
  signalGroup (sig: NodeJS.Signals): void
}

interface Teardown { teardown (fn: () => unknown): void }

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Run the server as another user (the tests run as root; e.g. `nobody`, 65534). */
  uid?: number
  gid?: number
  /**
   * Start node without tap's process-info hooks, which tap adds to NODE_OPTIONS of every child it
   * can see (they register a .ts require hook of their own): for tests about how node itself
   * loads an app (TypeScript loaders, type stripping). `env -u` execs node: the pid is node's.
   */
  bareNode?: boolean
}

export function spawnServer (t: Teardown, args: string[], options: SpawnOptions = {}): ServerProcess {
  const [command, argv] = options.bareNode === true ? ['env', ['-u', 'NODE_OPTIONS', process.execPath, ...args]] : [process.execPath, args]
  const child = spawn(command, argv, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NODE_ENV: 'development', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {})
  })
  const pid = child.pid as number
  const lines: LogLine[] = []
  let out = ''
  let err = ''
  let pending = ''
  let exit: Exit | undefined
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const l of [...listeners]) l() }

  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d
    pending += d
    let nl
    while ((nl = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      try { lines.push(JSON.parse(text) as LogLine) } catch { /* not a log line */ }
    }
    notify()
  })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; notify() })
  child.on('exit', (code, signal) => { exit = { code, signal }; notify() })

  t.teardown(() => {
    try { process.kill(-pid, 'SIGKILL') } catch { /* already gone */ }
  })

  const matcher = (m: string | ((l: LogLine) => boolean)) => typeof m === 'string' ? (l: LogLine) => l.msg === m : m
  const describe = (m: string | ((l: LogLine) => boolean)) => typeof m === 'string' ? JSON.stringify(m) : 'predicate'

  function until<T> (check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = (): boolean => {
        const v = check()
        if (v === undefined) return false
        listeners.delete(attempt)
        clearTimeout(timer)
        resolve(v)
        return true
      }
      const timer = setTimeout(() => {
        listeners.delete(attempt)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n--- stdout ---\n${out.slice(-4000)}\n--- stderr ---\n${err.slice(-2000)}`))
      }, timeoutMs)
      listeners.add(attempt)
      attempt()
    })
  }

  return {
    child,
    pid,
    lines,
    stdout: () => out,
    stderr: () => err,
    waitLine: (m, timeoutMs = 15_000) => until(() => lines.find(matcher(m)), timeoutMs, `log line ${describe(m)}`),
    waitLines: (m, count, timeoutMs = 15_000) => until(() => {
      const found = lines.filter(matcher(m))
      return found.length >= count ? found : undefined
    }, timeoutMs, `${count} log lines ${describe(m)}`),
    waitExit: (timeoutMs = 15_000) => until(() => exit, timeoutMs, 'process exit'),
    exited: () => exit,
    signal: (sig) => { try { process.kill(pid, sig) } catch { /* gone */ } },
    signalGroup: (sig) => { try { process.kill(-pid, sig) } catch { /* gone */ } }
  }
}

/** A port nobody listens on right now (the kernel picks it). */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

export interface Reply { status: number, body: string, json: any, headers: http.IncomingHttpHeaders }

/** One GET on its own connection (a new connection lands on the next worker, round-robin). */
export function get (port: number, urlPath: string, agent: http.Agent | false = false, timeoutMs = 20_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        let json: unknown
        try { json = JSON.parse(body) } catch { json = undefined }
        resolve({ status: res.statusCode ?? 0, body, json, headers: res.headers })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)))
    req.on('error', reject)
  })
}

/** Polls `fn` until it returns something other than undefined. */
export async function eventually<T> (fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, what = 'condition', everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) { lastError = err }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Distinct worker pids seen by `n` requests on fresh connections to `/`. */
export async function pidsServing (port: number, n = 6): Promise<Set<number>> {
  const pids = new Set<number>()
  for (let i = 0; i < n; i++) pids.add((await get(port, '/')).json.pid as number)
  return pids
}

/** Common knobs for the cluster tests: small timeouts, loopback, a fixed free port. */
export function clusterFlags (port: number, extra: string[] = []): string[] {
  return ['--host', '127.0.0.1', '--port', String(port), '--worker-timeout', '2s', '--graceful-timeout', '3s', ...extra]
}

export const CLI = path.join(FIXTURES, 'cluster-cli.js')
export const APP = path.join(FIXTURES, 'cluster-app.js')
