/**
 * A third-party server (nginx, HAProxy) run by a test: found on the machine or the test fails
 * saying how to install it, started in the foreground on a free loopback port (another port when
 * that one was taken meanwhile), waited for until it accepts, and always stopped — at teardown,
 * or killed at process exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './process'

const live = new Set<ChildProcess>()
let exitHook = false

/** The first of `candidates` that runs `versionArgs` successfully. */
export function systemBinary (name: string, versionArgs: string[], install: string): string {
  for (const candidate of [name, `/usr/sbin/${name}`, `/usr/local/sbin/${name}`]) {
    const probe = spawnSync(candidate, versionArgs, { encoding: 'utf8' })
    if (probe.error === undefined && probe.status === 0) return candidate
  }
  throw new Error(`${name} not found (PATH, /usr/sbin): the proxy tests need it; install it, e.g. \`${install}\` (.ci/run does)`)
}

export interface Daemon {
  proc: ChildProcess
  port: number
  /** Everything it printed. */
  output (): string
  /** SIGTERM (both nginx and HAProxy stop at once on it), SIGKILL to its group after 3 s. */
  stop (): Promise<void>
}

export interface DaemonSpec {
  name: string
  /** Writes the config for `port` and returns the command line. */
  prepare (port: number): { bin: string, args: string[] }
  /** Extra readiness condition besides accepting on the port (e.g. a pid file written). */
  ready?: () => boolean
  /** More text for a start-up error (e.g. its error log). */
  diagnostics?: () => string
}

export async function startDaemon (spec: DaemonSpec): Promise<Daemon> {
  if (!exitHook) {
    exitHook = true
    process.once('exit', () => { for (const c of live) c.kill('SIGKILL') })
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    try {
      return await launch(spec, port)
    } catch (err) {
      lastError = err
      // Only a port taken between probe and bind is worth another try.
      if (!/Address already in use|cannot bind/i.test(String(err))) break
    }
  }
  throw lastError
}

async function launch (spec: DaemonSpec, port: number): Promise<Daemon> {
  const { bin, args } = spec.prepare(port)
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  let out = ''
  const keep = (d: Buffer): void => { out += d.toString() }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const daemon: Daemon = { proc, port, output: () => out, stop: () => stopProcess(proc) }
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${spec.name} exited at start on port ${port}: ${(out + (spec.diagnostics?.() ?? '')).trim().slice(-800)}`)
    }
    if ((spec.ready?.() ?? true) && await accepts(port)) return daemon
    await sleep(20)
  }
  await daemon.stop()
  throw new Error(`${spec.name} did not listen on ${port} within 10 s: ${out.trim().slice(-800)}`)
}

async function stopProcess (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  proc.kill('SIGTERM')
  const done = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])
  if (!done) {
    try { process.kill(-(proc.pid as number), 'SIGKILL') } catch { /* gone */ }
    await exited
  }
}

export function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1')
    c.once('connect', () => { c.destroy(); resolve(true) })
    c.once('error', () => resolve(false))
  })
}
