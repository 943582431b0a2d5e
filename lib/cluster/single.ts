/**
 * Single-process mode: no primary, this process serves. Waitress's model: concurrency comes from
 * the event loop plus the libuv pool sized by the plan (`threads` → UV_THREADPOOL_SIZE).
 */
import type { Plan } from '../plan/types'
import { resolveAppPath, startAppServer } from './app-module'
import type { AppSource, ServeHandle } from './handle'
import type { LauncherLog } from './log'
import { startMetricsServer, type MetricsEndpoint } from '../ops/metrics-server'
import { watchOwnMemory, type MemoryWatch } from './memory-watch'
import type { RunningServer } from '../server/index'
import { openControlChannel } from '../control/attach'
import type { ControlHandlers } from '../control/server'
import { buildStatusReport, zeroRestarts } from '../control/status-report'
import { ownHeap, rssMb } from '../system/process-memory'
import { followParent, isServerChild } from '../launch/server-child'

/**
 * libuv reads UV_THREADPOOL_SIZE once, when the pool is first used (the first fs/dns/crypto/zlib
 * async call). Setting it here works only if nothing used the pool yet in this process; the CLI
 * path is early enough, a script that did async fs work before serve() is not. Never overrides a
 * value the user set.
 */
export function applyThreadpoolSize (plan: Plan, env: NodeJS.ProcessEnv = process.env): void {
  if (env.UV_THREADPOOL_SIZE === undefined || env.UV_THREADPOOL_SIZE === '') env.UV_THREADPOOL_SIZE = String(plan.threads)
}

export async function runSingle (plan: Plan, source: AppSource, log: LauncherLog): Promise<ServeHandle> {
  applyThreadpoolSize(plan)
  const server = await startAppServer(plan, source, log)
  let metrics: MetricsEndpoint | undefined
  const collect = server.collectMetrics
  if (plan.ops.metricsPort !== undefined && collect !== undefined) {
    try {
      metrics = await startMetricsServer(plan.ops.metricsHost, plan.ops.metricsPort, async () => [await collect()], log)
    } catch (err) {
      await server.drain(0)
      throw err
    }
  }
  log.info({ addresses: server.addresses, threads: process.env.UV_THREADPOOL_SIZE }, 'listening')
  const memory = watchOwnMemory(plan.memory, log)

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    // Metrics stay scrapable during the drain.
    memory.stop()
    stopping ??= server.drain(plan.supervisor.gracefulTimeoutMs, plan.ops.drainDelayMs).finally(() => metrics?.close())
    return stopping
  }
  const shutdown = (why: { signal: NodeJS.Signals } | { command: 'stop' }): void => {
    log.info({ ...why, gracefulTimeoutMs: plan.supervisor.gracefulTimeoutMs }, 'shutdown: draining')
    stop().then(() => { log.info('stopped'); process.exit(0) }, (err) => { log.error({ err }, 'drain failed'); process.exit(1) })
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== undefined) {
      // A second Ctrl-C means "now" (close-with-grace does the same).
      log.warn({ signal }, 'second signal during shutdown: exiting now')
      process.exit(1)
    }
    shutdown({ signal })
  }
  const handlers = singleControlHandlers(plan, server, memory, () => {
    if (stopping === undefined) shutdown({ command: 'stop' })
  })
  const control = await openControlChannel({ plan, mode: 'single', app: typeof source.app === 'string' ? resolveAppPath(source.app) : undefined, addresses: server.addresses, log, handlers })
    .catch(async (err: unknown) => { memory.stop(); await server.drain(0); await metrics?.close(); throw err })
  if (isServerChild()) {
    // Started by a launcher (--import/--require, --watch): it owns the signals (launch/server-child.ts).
    followParent(onSignal, server.addresses)
  } else {
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }

  return {
    role: 'single',
    addresses: server.addresses,
    close: async () => {
      process.removeListener('SIGTERM', onSignal)
      process.removeListener('SIGINT', onSignal)
      await stop()
      await control?.close()
    }
  }
}

/** `prodserver status` and `stop` for the one process; `reload` is refused (nothing could serve meanwhile). */
function singleControlHandlers (plan: Plan, server: RunningServer, memory: MemoryWatch, stop: () => void): ControlHandlers {
  const startedAt = Date.now()
  return {
    status: (info) => buildStatusReport({
      info,
      phase: server.draining ? 'stopping' : 'running',
      plan,
      processes: [{
        pid: process.pid,
        state: server.draining ? 'draining' : 'serving',
        startedFor: 'boot',
        startedAt,
        requests: server.requestCount(),
        restarts: {},
        heap: ownHeap(),
        rssMb: rssMb(process.pid),
        reading: memory.reading(process.pid)
      }],
      restarts: zeroRestarts(),
      memory: memory.summary()
    }),
    reload: async () => {
      throw new Error('reload needs cluster mode: a single process cannot replace itself without a moment where nothing serves; restart it, or serve with --cluster (--workers 1 on a small machine)')
    },
    stop: () => {
      stop()
      return { deadlineMs: plan.ops.drainDelayMs + plan.supervisor.gracefulTimeoutMs + 1000 }
    }
  }
}
