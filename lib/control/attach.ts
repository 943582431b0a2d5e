/**
 * Opens the control socket for a serving role (the primary, or the single process).
 *
 * The default directory failing (read-only /tmp, a directory of someone else's) must not stop a
 * server from serving: it warns, and `prodserver status` will not find it. A `control-dir` the
 * operator chose is a promise, so there the failure fails the boot (exit 2, naming the knob).
 */
import type { Plan } from '../plan/types'
import { KnobError } from '../config/values'
import { packageVersion } from '../cli/version'
import { serverControlDir } from './dir'
import { ControlServer, type ControlHandlers, type ControlLog } from './server'

export interface ControlChannelOptions {
  plan: Plan
  mode: 'single' | 'cluster'
  app?: string
  addresses?: string[]
  handlers: ControlHandlers
  log: ControlLog
  env?: NodeJS.ProcessEnv
}

export async function openControlChannel (options: ControlChannelOptions): Promise<ControlServer | undefined> {
  const { plan, log } = options
  const explicit = plan.ops.controlDir
  const dir = serverControlDir(explicit, options.env)
  const info = {
    mode: options.mode,
    cwd: process.cwd(),
    app: options.app,
    addresses: options.addresses ?? plannedAddresses(plan),
    startedAt: new Date().toISOString(),
    version: packageVersion()
  }
  try {
    return await ControlServer.start(dir, info, options.handlers, log)
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    if (explicit !== undefined) {
      throw new KnobError(`control-dir=${JSON.stringify(explicit)} (${plan.sources['control-dir'] ?? 'control-dir'}) cannot be used: ${why}; accepted: a directory this user owns or can create (it is made 0700)`)
    }
    log.warn(`control socket unavailable (${why}): prodserver status, reload and stop will not find this server; set control-dir (PRODSERVER_CONTROL_DIR) to a directory this user owns`)
    return undefined
  }
}

/**
 * Until the first worker reports where it listens, the addresses the plan asks for (so `--port`
 * finds a cluster that is still starting); port 0 is only known once bound.
 */
function plannedAddresses (plan: Plan): string[] {
  const listen = plan.listen
  if (listen.kind === 'unix') return [listen.path]
  return listen.addresses.filter((a) => a.port > 0).map((a) => `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`)
}

