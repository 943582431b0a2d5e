/**
 * `prodserver status [--json]`, `prodserver reload`, `prodserver stop`: find the running server
 * through its control socket (no pid needed) and ask it.
 *
 * Exit codes: 0 done; 1 the server refused or failed (a reload aborted, a reload in single mode);
 * 2 bad input, or several servers match; 3 no server is running (LSB's "not running").
 * `reload` returns when every worker was replaced (or the reload was aborted) and `stop` when the
 * process has exited, so both fit systemd's ExecReload=/ExecStop=.
 */
import type { ParsedArgv } from '../config/argv'
import { knobByName, type KnobDefinition } from '../config/knobs'
import { KnobError, parseKnobValue } from '../config/values'
import { ControlClientError, locateServer, sendCommand } from '../control/client'
import { ControlDirError } from '../control/dir'
import type { ControlCommand } from '../control/protocol'
import { statusText } from './status'

export interface ControlIo {
  stdout (text: string): void
  stderr (text: string): void
  env: NodeJS.ProcessEnv
  cwd: string
}

/** Knob flags that choose the server; every other knob flag means nothing to a running server. */
const SELECTORS = ['control-dir', 'port', 'unix-socket']
/** A stopped server exits within its own deadline; this much more is allowed for the exit itself. */
const EXIT_MARGIN_MS = 5000

export async function controlCommand (command: ControlCommand, args: ParsedArgv, io: ControlIo): Promise<number> {
  const usage = `prodserver ${command}${command === 'status' ? ' [--json]' : ''} [--control-dir <dir>] [--port <n> | --unix-socket <path>]`
  if (args.positional.length > 0) throw new KnobError(`${command} takes no module, got ${JSON.stringify(args.positional[0])}; accepted: ${usage}`)
  if (command !== 'status' && args.switches.has('json')) throw new KnobError(`--json is only for status and config; accepted: ${usage}`)
  const other = Object.keys(args.flags).find((name) => !SELECTORS.includes(name))
  if (other !== undefined) throw new KnobError(`--${other} means nothing to ${command} (it talks to a running server); accepted: ${usage}`)

  try {
    const server = locateServer({
      controlDir: selector(args, io, 'control-dir') as string | undefined,
      port: selector(args, io, 'port') as number | undefined,
      unixSocket: selector(args, io, 'unix-socket') as string | undefined,
      cwd: io.cwd,
      env: io.env
    })
    const connection = sendCommand(server, command)
    const reply = await connection.reply
    if (!reply.ok) {
      io.stderr(`prodserver: ${command}: ${reply.error}\n`)
      return 1
    }
    if ('status' in reply) {
      io.stdout(args.switches.has('json') ? JSON.stringify(reply.status, null, 2) + '\n' : statusText(reply.status))
      return 0
    }
    if ('reload' in reply) {
      if (!reply.reload.ok) {
        io.stderr(`prodserver: ${reply.reload.error}\n`)
        return 1
      }
      io.stdout(`reload done (pid ${server.pid}): workers now ${reply.reload.workers.join(', ')}\n`)
      return 0
    }
    const { deadlineMs } = reply.stopping
    io.stdout(`stopping server pid ${server.pid} (draining, at most ${Math.ceil(deadlineMs / 1000)} s)\n`)
    const exited = await Promise.race([connection.closed.then(() => true), sleep(deadlineMs + EXIT_MARGIN_MS).then(() => false)])
    if (!exited) {
      io.stderr(`prodserver: stop: server pid ${server.pid} did not exit within ${Math.ceil((deadlineMs + EXIT_MARGIN_MS) / 1000)} s\n`)
      return 1
    }
    io.stdout(`stopped (pid ${server.pid})\n`)
    return 0
  } catch (err) {
    if (err instanceof ControlClientError) {
      io.stderr(`prodserver: ${command}: ${err.message}\n`)
      return err.exitCode
    }
    if (err instanceof ControlDirError) {
      io.stderr(`prodserver: ${command}: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

/** A selector from its flag, or control-dir also from PRODSERVER_CONTROL_DIR (the server reads it there too). */
function selector (args: ParsedArgv, io: ControlIo, name: string): unknown {
  const knob = knobByName(name) as KnobDefinition
  const flag = args.flags[name]
  if (flag !== undefined) return parseKnobValue(knob, flag, `--${name}`)
  if (name !== 'control-dir') return undefined
  const env = knob.env.find((e) => io.env[e] !== undefined && io.env[e] !== '')
  return env === undefined ? undefined : parseKnobValue(knob, io.env[env], env)
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
