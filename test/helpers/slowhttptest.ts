/**
 * Slow-HTTP attacks with the real slowhttptest (Debian package `slowhttptest`), and the normal
 * client whose answer times tell whether the server kept serving through them.
 *
 * slowhttptest is required: without it these helpers throw (the test fails, it is never skipped);
 * `.ci/run` installs it. Every attack is bounded (`seconds`) and killed at teardown. Its
 * connections are file descriptors on both ends, so the attack is checked against the hard
 * `ulimit -n` (node raises its own soft limit to the hard one; slowhttptest is started with its
 * soft limit raised the same way).
 */
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

export type SlowMode = 'slowloris' | 'slow-body' | 'slow-read'

const MODE_FLAG: Record<SlowMode, string> = { slowloris: '-H', 'slow-body': '-B', 'slow-read': '-X' }

export interface SlowHttpOptions {
  mode: SlowMode
  url: string
  /** Target number of connections (-c). */
  connections: number
  /** New connections per second (-r). */
  rate: number
  /** Test length in seconds (-l); slowhttptest closes everything and exits after it. */
  seconds: number
  /** Seconds between follow-up header lines / body chunks (-i); slowhttptest's default is 10. */
  followUpSeconds?: number
  /** Content-Type of the slow body (-f). */
  contentType?: string
  /** Content-Length announced by the slow body (-s). */
  contentLength?: number
  /** Slow read: advertised receive window range in bytes (-w, -y). */
  window?: [number, number]
  /** Slow read: bytes per read() (-z) and seconds between reads (-n). */
  readBytes?: number
  readEverySeconds?: number
  /** Slow read: the request repeated this many times on each connection (-k, pipelined). */
  pipelined?: number
}

export interface SlowHttpSample { second: number, closed: number, pending: number, connected: number }

export interface SlowHttpReport {
  /** slowhttptest's per-second statistics (its -g CSV). */
  samples: SlowHttpSample[]
  /** Most connections it held open at once. */
  peakConnected: number
  exitCode: number | null
  output: string
}

export interface SlowHttpAttack {
  pid: number
  /** Resolves when slowhttptest has exited (after `seconds`, or when stopped). */
  finished: Promise<SlowHttpReport>
  /** Statistics written so far. */
  samples (): SlowHttpSample[]
  stop (): Promise<SlowHttpReport>
}

interface Teardown { teardown (fn: () => unknown): void }

/** Path of the slowhttptest binary; throws (test failure) when it is not installed. */
export function requireSlowHttpTest (): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir, 'slowhttptest')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch { /* not in this directory */ }
  }
  throw new Error('slowhttptest is not installed: these tests need the real attacker (apt-get install slowhttptest; .ci/run installs it)')
}

/** The hard limit on open files for processes started from here (`ulimit -Hn`). */
export function hardFdLimit (): number {
  const out = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()
  return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out)
}

/**
 * Fails (throws) unless `connections` fit under the fd limit with room for the server, the
 * normal client and the test itself: an attack silently cut short by EMFILE proves nothing.
 */
export function assertFdRoom (connections: number): void {
  const hard = hardFdLimit()
  if (connections + 512 > hard) {
    throw new Error(`the hard open-files limit (ulimit -Hn = ${hard}) is too low for an attack of ${connections} connections; raise it to at least ${connections + 512}`)
  }
}

export function startSlowHttpTest (t: Teardown, o: SlowHttpOptions): SlowHttpAttack {
  const binary = requireSlowHttpTest()
  assertFdRoom(o.connections)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prodserver-slowhttptest-'))
  const prefix = path.join(dir, 'stats')
  const args = [MODE_FLAG[o.mode], '-c', String(o.connections), '-r', String(o.rate), '-l', String(o.seconds),
    '-u', o.url, '-g', '-o', prefix, '-p', '2']
  if (o.followUpSeconds !== undefined) args.push('-i', String(o.followUpSeconds))
  if (o.mode === 'slow-body') args.push('-t', 'POST', '-f', o.contentType ?? 'text/plain', '-s', String(o.contentLength ?? 8192))
  if (o.mode === 'slow-read') {
    const [from, to] = o.window ?? [512, 1024]
    args.push('-w', String(from), '-y', String(to), '-z', String(o.readBytes ?? 32), '-n', String(o.readEverySeconds ?? 1), '-k', String(o.pipelined ?? 1))
  }
  // Raise the soft fd limit to the hard one (slowhttptest would otherwise shrink its attack to fit).
  const child = spawn('/bin/sh', ['-c', 'ulimit -Sn "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', binary, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  const pid = child.pid as number
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { output += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { output += d })

  const samples = (): SlowHttpSample[] => readSamples(`${prefix}.csv`)
  const finished = new Promise<SlowHttpReport>((resolve) => {
    child.on('exit', (code) => {
      const s = samples()
      resolve({ samples: s, peakConnected: Math.max(0, ...s.map((x) => x.connected)), exitCode: code, output: stripAnsi(output) })
    })
  })
  t.teardown(async () => {
    try { process.kill(-pid, 'SIGKILL') } catch { /* already gone */ }
    await finished
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    pid,
    finished,
    samples,
    stop: async () => {
      try { process.kill(-pid, 'SIGINT') } catch { /* already gone */ }
      return await finished
    }
  }
}

function readSamples (csv: string): SlowHttpSample[] {
  let text: string
  try { text = readFileSync(csv, 'utf8') } catch { return [] }
  const rows: SlowHttpSample[] = []
  for (const line of text.split('\n').slice(1)) {
    const [second, closed, pending, connected] = line.split(',').map(Number)
    if (Number.isFinite(connected)) rows.push({ second, closed, pending, connected })
  }
  return rows
}

function stripAnsi (s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
}

export interface Answer {
  /** When the request started (Date.now()). */
  at: number
  /** Milliseconds until the whole response arrived, or undefined when there was none in time. */
  ms?: number
  status?: number
  error?: string
}

export interface NormalClient {
  /** Every request made so far, in order. */
  answers: Answer[]
  /** Stops after the request under way; resolves with every answer. */
  stop (): Promise<Answer[]>
}

/**
 * A normal user: one GET at a time on a fresh connection, a new one `everyMs` after the previous
 * ended, each given `timeoutMs` to answer completely.
 */
export function normalClient (port: number, urlPath: string, everyMs = 100, timeoutMs = 2000): NormalClient {
  const answers: Answer[] = []
  let running = true
  const loop = (async () => {
    while (running) {
      answers.push(await answerTime(port, urlPath, timeoutMs))
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  })()
  return {
    answers,
    stop: async () => {
      running = false
      await loop
      return answers
    }
  }
}

function answerTime (port: number, urlPath: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const at = Date.now()
    const began = performance.now()
    let settled = false
    const done = (a: Omit<Answer, 'at'>): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      resolve({ at, ...a })
    }
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      res.resume()
      res.on('end', () => done({ ms: performance.now() - began, status: res.statusCode }))
      res.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }))
    const timer = setTimeout(() => done({ error: `no answer within ${timeoutMs} ms` }), timeoutMs)
  })
}

/** Share of answers that were a 200 within `withinMs`, and a one-line summary for assertions. */
export function answeredWithin (answers: Answer[], withinMs: number): { share: number, summary: string } {
  const ok = answers.filter((a) => a.status === 200 && a.ms !== undefined && a.ms <= withinMs).length
  const share = answers.length === 0 ? 0 : ok / answers.length
  const slowest = Math.max(0, ...answers.map((a) => a.ms ?? Infinity))
  const failures = answers.filter((a) => !(a.status === 200 && a.ms !== undefined && a.ms <= withinMs)).map((a) => a.error ?? `${a.status} in ${Math.round(a.ms ?? 0)} ms`)
  return {
    share,
    summary: `${ok}/${answers.length} answered 200 within ${withinMs} ms (slowest ${slowest === Infinity ? 'none' : Math.round(slowest)} ms)${failures.length > 0 ? `; failures: ${[...new Set(failures)].slice(0, 3).join(', ')}` : ''}`
  }
}

/** Resident set size of a process in MB (/proc/<pid>/status VmRSS), or undefined once it is gone. */
export function rssMb (pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch { return undefined }
}

/** Direct children of a process (/proc/<pid>/task/<pid>/children): a cluster primary's workers. */
export function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch { return [] }
}

export interface RssWatch {
  /** Highest RSS seen so far for each pid, in MB. */
  peaks: Map<number, number>
  stop (): Map<number, number>
}

/** Samples the RSS of `pids()` (re-read each time: workers may change) every `everyMs`. */
export function watchRss (pids: () => number[], everyMs = 100): RssWatch {
  const peaks = new Map<number, number>()
  const sample = (): void => {
    for (const pid of pids()) {
      const mb = rssMb(pid)
      if (mb !== undefined) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, mb))
    }
  }
  sample()
  const timer = setInterval(sample, everyMs)
  return {
    peaks,
    stop: () => {
      clearInterval(timer)
      sample()
      return peaks
    }
  }
}
