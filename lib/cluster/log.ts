/**
 * The launcher's own log: JSON lines on stdout (pino, which ships with Fastify), one event per
 * line with a stable `msg`, so operators and tests can wait on them.
 */
import pino, { type Logger } from 'pino'

export type LauncherLog = Logger

export function launcherLog (role: 'primary' | 'single' | 'worker'): LauncherLog {
  // Synchronous writes: the primary calls process.exit() right after its last lines (halt, stop).
  return pino({ name: 'prodserver', base: { pid: process.pid, role } }, pino.destination({ dest: 1, sync: true }))
}
