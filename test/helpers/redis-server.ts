/**
 * A private redis-server for one test file: its own free port, no persistence, killed in teardown.
 * Never the shared 6379 one. Usable by every engineer's tests:
 *
 *   const redis = await startRedis()
 *   t.teardown(() => redis.stop())
 *   new RedisSessionStore({ url: redis.url })
 *
 * kill()    SIGKILL (a crash: connections reset), waits for the exit
 * freeze()  SIGSTOP (TCP stays open, nothing answers — research L2)
 * thaw()    SIGCONT
 * restart() a fresh server on the same port (after kill(), or kills first), waits until it answers
 * stop()    SIGCONT + SIGKILL + wait; idempotent; also run at process exit as a safety net
 *
 * There is deliberately no "skip when missing": CI requires Redis, so a missing binary fails the
 * test with a message that says how to fix it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

export interface PrivateRedis {
  port: number
  /** redis://127.0.0.1:<port> (with `:password@` when started with one). */
  url: string
  pid (): number | undefined
  kill (): Promise<void>
  freeze (): void
  thaw (): void
  restart (): Promise<void>
  stop (): Promise<void>
}

export interface StartRedisOptions {
  /** `--requirepass`; the url then carries it. */
  password?: string
  /** Extra redis-server arguments. */
  args?: string[]
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false

export function redisServerBinary (): string {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (found.error !== undefined || found.status !== 0) {
    throw new Error('redis-server binary not found on PATH: the Redis tests need a real Redis ' +
      '(CI requires it). Install it, e.g. `apt-get install redis-server` or `brew install redis`.')
  }
  return 'redis-server'
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

export async function startRedis (opts: StartRedisOptions = {}): Promise<PrivateRedis> {
  const bin = redisServerBinary()
  installExitHook()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prodserver-redis-'))
  let child: ChildProcess | undefined
  let port = 0

  const args = (p: number): string[] => [
    '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--daemonize', 'no', '--loglevel', 'warning',
    ...(opts.password !== undefined ? ['--requirepass', opts.password] : []),
    ...(opts.args ?? [])
  ]

  const launch = async (p: number): Promise<ChildProcess> => {
    const proc = spawn(bin, args(p), { stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(proc)
    let output = ''
    proc.stdout?.on('data', (d: Buffer) => { output += d.toString() })
    proc.stderr?.on('data', (d: Buffer) => { output += d.toString() })
    proc.once('exit', () => live.delete(proc))
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`redis-server exited at start on port ${p}: ${output.trim().slice(-500)}`)
      }
      if (await answersPing(p, opts.password)) return proc
      await sleep(20)
    }
    proc.kill('SIGKILL')
    throw new Error(`redis-server did not answer PING on port ${p} within 10 s: ${output.trim().slice(-500)}`)
  }

  // The free port may be taken between probe and bind by another test run: try a few.
  let lastError: unknown
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await freePort()
    try {
      child = await launch(port)
    } catch (err) {
      lastError = err
    }
  }
  if (child === undefined) throw lastError

  const auth = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}@` : ''
  const killCurrent = async (): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGCONT') // a frozen process must be able to die cleanly and release the port
    proc.kill('SIGKILL')
    await exited
  }

  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    pid: () => child?.pid,
    kill: killCurrent,
    freeze: () => { child?.kill('SIGSTOP') },
    thaw: () => { child?.kill('SIGCONT') },
    restart: async () => {
      await killCurrent()
      // The port was just released by our own process; retry briefly in case of TIME_WAIT races.
      let err: unknown
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          child = await launch(port)
          return
        } catch (e) {
          err = e
          await sleep(100)
        }
      }
      throw err
    },
    stop: async () => {
      await killCurrent()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** RESP PING over a raw socket (no client library, no retries): true when the server answers. */
export async function answersPing (port: number, password?: string, timeoutMs = 500): Promise<boolean> {
  return await new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let buf = ''
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      sock.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.on('error', () => done(false))
    sock.on('connect', () => {
      const auth = password !== undefined ? `AUTH ${password}\r\n` : ''
      sock.write(`${auth}PING\r\n`)
    })
    sock.on('data', (d: Buffer) => {
      buf += d.toString()
      if (buf.includes('+PONG')) done(true)
      else if (buf.includes('-')) done(false)
    })
  })
}

/** Every private redis process a helper starts is killed when the test process exits, even on a crash. */
export function trackRedisProcess (proc: ChildProcess): void {
  installExitHook()
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
}

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const proc of live) {
      try { proc.kill('SIGCONT'); proc.kill('SIGKILL') } catch {}
    }
  })
}

/**
 * One private redis-server for a whole test file, and a plain client to look at its keys: started
 * before the file's first test, stopped after its last.
 */
export function privateRedisForFile (tap: { before (fn: () => Promise<void>): unknown, teardown (fn: () => Promise<void>): unknown }): { redis: PrivateRedis, raw: Redis } {
  const shared = {} as { redis: PrivateRedis, raw: Redis }
  tap.before(async () => {
    shared.redis = await startRedis()
    shared.raw = new Redis(shared.redis.url)
  })
  tap.teardown(async () => {
    shared.raw?.disconnect()
    await shared.redis?.stop()
  })
  return shared
}
