/**
 * The launcher's own log: JSON lines on stdout (pino, which ships with Fastify), one event per
 * line with a stable `msg`, so operators and tests can wait on them. `log-level` sets its level;
 * pretty logs (pino-pretty, when installed) replace the JSON on a terminal.
 */
import pino, { type Logger } from 'pino'
import type { LogPlan } from '../plan/types'
import { prettyStream, wantsPretty } from '../logs/pretty'

export type LauncherLog = Logger

export function launcherLog (role: 'primary' | 'single' | 'worker' | 'watch', logs: LogPlan = {}): LauncherLog {
  const pretty = wantsPretty(logs.pretty)
  // Synchronous writes: the primary calls process.exit() right after its last lines (halt, stop).
  const destination = pretty !== undefined ? prettyStream(pretty) : pino.destination({ dest: 1, sync: true })
  return pino({ name: 'prodserver', level: logs.level ?? 'info', base: { pid: process.pid, role } }, destination)
}
