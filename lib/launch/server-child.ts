/**
 * The server in a child process of the launcher, for what one process cannot do to itself:
 * start with node flags it was not started with (--import/--require) and start again on a code
 * change (--watch, single mode). The parent is the process the user, npm or systemd sees.
 *
 * Like a cluster worker, the child ignores SIGINT/SIGTERM (Ctrl-C reaches the whole process
 * group; systemd signals the whole cgroup) and follows its parent over IPC, so a stop signal is
 * acted on once, by the parent's decision: first one → drain, second one → now. A child whose
 * parent dies (IPC closed) drains and exits; it never outlives its launcher.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:os'

const CHILD_ENV = 'PRODSERVER_INTERNAL_CHILD'
const TAG = 'prodserver'

type ParentMessage = { prodserver: 1, type: 'signal', signal: 'SIGTERM' | 'SIGINT' }
type ChildMessage = { prodserver: 1, type: 'listening', addresses: string[] }

function isOurs<M extends { type: string }> (m: unknown): m is M {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>)[TAG] === 1
}

/** True in the server process a launcher started (it then neither relaunches nor watches). */
export function isServerChild (env: NodeJS.ProcessEnv = process.env): boolean {
  return env[CHILD_ENV] === '1' && typeof process.send === 'function'
}

const ignore = (): void => {}

/** Child side: signals come from the parent; the parent learns where we listen. */
export function followParent (onSignal: (signal: NodeJS.Signals) => void, addresses: string[]): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, ignore)
  let told = false
  process.on('message', (m: unknown) => {
    if (!isOurs<ParentMessage>(m) || m.type !== 'signal') return
    told = true
    onSignal(m.signal)
  })
  // The parent died without telling us (SIGKILL, OOM): drain and go, as a cluster worker does.
  process.once('disconnect', () => { if (!told) onSignal('SIGTERM') })
  process.send?.({ prodserver: 1, type: 'listening', addresses } satisfies ChildMessage)
}

export interface ChildExit { code: number | null, signal: NodeJS.Signals | null }

/** Parent side: one run of the server, this same script and argv again, with extra node flags. */
export class ServerChild {
  readonly process: ChildProcess
  readonly exited: Promise<ChildExit>
  /** Resolves with the child's addresses once it listens; never, if it exits first. */
  readonly listening: Promise<string[]>

  constructor (extraExecArgv: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.process = spawn(process.execPath, [...process.execArgv, ...extraExecArgv, ...process.argv.slice(1)], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      env: { ...env, [CHILD_ENV]: '1' }
    })
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => resolve({ code, signal })))
    this.listening = new Promise((resolve) => {
      this.process.on('message', (m: unknown) => {
        if (isOurs<ChildMessage>(m) && m.type === 'listening') resolve(m.addresses)
      })
    })
    // A child that exits closes the channel; a send racing with that is not an error of ours.
    this.process.on('error', ignore)
  }

  /** Relays a stop signal: the child drains on the first, stops at once on the second. */
  signal (signal: 'SIGTERM' | 'SIGINT'): void {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    if (this.process.connected) {
      this.process.send({ prodserver: 1, type: 'signal', signal } satisfies ParentMessage, ignore)
    } else {
      this.process.kill(signal)
    }
  }
}

/** The exit code a shell would report for this child: its code, or 128 + the signal number. */
export function exitCodeOf (exit: ChildExit): number {
  if (exit.code !== null) return exit.code
  return 128 + (exit.signal !== null ? constants.signals[exit.signal] ?? 0 : 0)
}
