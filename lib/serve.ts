/**
 * serve(): the launcher in code. Same knobs as the CLI (which calls it with `flags`).
 *
 * One decision per process, made here: what role does this process play?
 *  - forked by our primary (cluster.isWorker + the plan in the env) → worker: build the app from
 *    the plan the primary computed, listen, report ready;
 *  - plan.mode 'cluster' → primary: supervise workers that run this same script (process.argv[1],
 *    same argv) again — the "this script runs again in each worker" pattern, CLI included;
 *  - otherwise → single process.
 */
import cluster from 'node:cluster'
import type { KnobOptions } from './config/knobs'
import { knobsInGroup } from './config/knobs'
import { resolveKnobs, type ResolvedKnobs } from './config/resolve'
import { secretsAsEnvText, type Secret } from './config/secret-list'
import type { FastifyServerOptions } from 'fastify'
import type { AppPlugin } from './server/index'
import type { Plan, Resources } from './plan/types'
import { planServer } from './plan/plan-server'
import { isOurWorker, readWorkerPlan } from './cluster/protocol'
import { runWorker } from './cluster/worker'
import { runSingle } from './cluster/single'
import { runPrimary } from './cluster/primary'
import { launcherLog, type LauncherLog } from './cluster/log'
import { isServerChild } from './launch/server-child'
import { missingPreloadArgs } from './launch/preload'
import { runRelaunched } from './launch/relaunch'
import { npmAsPid1Warning, stopWhenOrphaned } from './launch/orphan'
import { runWatchedSingle } from './watch/single'
import { reloadOnChange, watchRoots } from './watch/cluster'
import { AppLoadError, resolveAppPath } from './cluster/app-module'
import { withCloseStep, type ServeHandle } from './cluster/handle'
import { claimPidFile } from './control/pid-file'

export type { ServeHandle } from './cluster/handle'
export { AppLoadError } from './cluster/app-module'

export interface ServeOptions extends KnobOptions {
  /** The app: a Fastify plugin, or a module path (default export or module.exports; optional `options` export). */
  app: AppPlugin | string
  appOptions?: Record<string, unknown>
  fastify?: FastifyServerOptions
  /** Parsed CLI flags (the CLI passes them; highest precedence). */
  flags?: Record<string, string | boolean>
  env?: NodeJS.ProcessEnv
  resources?: Resources
}

export async function serve (options: ServeOptions): Promise<ServeHandle> {
  const source = { app: options.app, appOptions: options.appOptions, fastify: options.fastify }
  if (isOurWorker()) return await runWorker(readWorkerPlan(), source)

  const env = options.env ?? process.env
  const resolved = resolveKnobs({ flags: options.flags, options: options as unknown as Record<string, unknown>, env })
  const plan = withExplicitProcessModel(planServer(resolved, options.resources), resolved)
  const role = plan.mode === 'cluster' && cluster.isPrimary ? 'primary' : 'single'
  const log = launcherLog(role, plan.logs)
  for (const warning of plan.warnings) log.warn(warning)

  if (role === 'single') {
    Object.assign(process.env, sessionKnobEnv(resolved))
    if (isServerChild()) return await runSingle(plan, source, log)
    // --watch, and preloads this node was not started with, need the server in a child process;
    // the pid file then names the launcher, the process to signal.
    const preloads = missingPreloadArgs(process.execArgv, plan.launch)
    const launched = await withPidFile(plan, resolved, log, async () => plan.launch.watch
      ? await runWatchedSingle(preloads, watchRoots(options.app), launcherLog('watch', plan.logs))
      : preloads.length > 0 ? await runRelaunched(preloads) : await runSingle(plan, source, log))
    return stopsWithNpm(launched, env, log)
  }
  if (typeof options.app === 'string') {
    // Fail fast on a wrong path; the module itself is loaded by workers only (no preload, so a
    // reload re-reads it from disk).
    try {
      require.resolve(resolveAppPath(options.app))
    } catch {
      throw new AppLoadError(`cannot load app module ${options.app}: not found (resolved against ${process.cwd()})`)
    }
  }
  const app = typeof options.app === 'string' ? resolveAppPath(options.app) : undefined
  const primary = await withPidFile(plan, resolved, log, () => runPrimary({ plan, log, env, workerEnv: sessionKnobEnv(resolved), app }))
  return stopsWithNpm(plan.launch.watch ? await reloadOnChange(primary, watchRoots(options.app), log) : primary, env, log)
}

/** Under npm/npx, a SIGTERM that only reached npm's shell still stops us (launch/orphan.ts). */
function stopsWithNpm (handle: ServeHandle, env: NodeJS.ProcessEnv, log: LauncherLog): ServeHandle {
  const pid1 = npmAsPid1Warning(env)
  if (pid1 !== undefined) log.warn(pid1)
  const cancel = stopWhenOrphaned(env, (parent) => {
    log.warn({ parent }, 'the process that started us exited (npm or npx was stopped): shutting down')
    process.kill(process.pid, 'SIGTERM')
  })
  return withCloseStep(handle, cancel)
}

/** pid-file: claimed before anything listens, released when the server stops (or fails to start). */
async function withPidFile (plan: Plan, resolved: ResolvedKnobs, log: ReturnType<typeof launcherLog>, start: () => Promise<ServeHandle>): Promise<ServeHandle> {
  if (plan.ops.pidFile === undefined) return await start()
  const pidFile = claimPidFile(plan.ops.pidFile, resolved.sources['pid-file'], (msg) => log.warn(msg))
  let handle: ServeHandle
  try {
    handle = await start()
  } catch (err) {
    pidFile.release()
    throw err
  }
  const close = handle.close.bind(handle)
  handle.close = async () => {
    await close()
    pidFile.release()
  }
  return handle
}

/**
 * An explicit `cluster` or worker count decides the process model. planServer() owns this rule;
 * while it is a stub that always answers 'single', apply it here. Once the planner applies it,
 * this is a no-op (it only ever agrees with an explicit knob).
 */
function withExplicitProcessModel (plan: Plan, resolved: ResolvedKnobs): Plan {
  const explicitWorkers = resolved.sources.workers !== 'default' ? resolved.values.workers : undefined
  const wantsCluster = resolved.values.cluster === true || (explicitWorkers !== undefined && explicitWorkers > 1)
  if (!wantsCluster || plan.mode === 'cluster') return plan
  return { ...plan, mode: 'cluster', workers: explicitWorkers ?? plan.workers }
}

/**
 * Session knobs given as CLI flags or options in code reach the sessions plugin — which reads the
 * environment — through their preferred env name, in this process (single) or in every worker.
 */
function sessionKnobEnv (resolved: ResolvedKnobs): Record<string, string> {
  const out: Record<string, string> = {}
  for (const knob of knobsInGroup('session')) {
    const source = resolved.sources[knob.name as keyof typeof resolved.sources]
    if (source === undefined || source === 'default' || source.startsWith('env ')) continue
    const value = (resolved.values as Record<string, unknown>)[knob.name]
    if (value === undefined) continue
    if (knob.kind === 'secrets') out[knob.env[0]] = secretsAsEnvText(value as Secret[], source)
    else out[knob.env[0]] = Array.isArray(value) ? value.join(',') : knob.kind === 'duration' ? `${value as number}ms` : String(value)
  }
  return out
}
