/**
 * `--log-level` and pretty logs applied to the app's Fastify logger, the way fastify-cli does it:
 * the flag sets the level of the app's own logger configuration; an app that exports no logger
 * gets Fastify's logger at that level — so `-l info` shows request logs, as `fastify start -l info`
 * does. Without the flag, the app's logger is exactly what the app configured (none by default).
 */
import type { FastifyServerOptions } from 'fastify'
import type { LogPlan } from '../plan/types'
import { prettyStream, wantsPretty } from './pretty'

export function withLogPlan (options: FastifyServerOptions, logs: LogPlan | undefined, pretty = wantsPretty): FastifyServerOptions {
  const level = logs?.level
  const instance = (options as { loggerInstance?: { level: string } }).loggerInstance
  if (instance !== undefined) {
    // The app built its own logger (and its destination): only the level is ours to set.
    if (level !== undefined) instance.level = level
    return options
  }
  const configured = options.logger
  if (level === undefined && (configured === undefined || configured === false)) return options
  const base: Record<string, unknown> = typeof configured === 'object' && configured !== null ? { ...configured } : {}
  if (level !== undefined) base.level = level
  else base.level ??= 'info'
  if (base.stream === undefined && base.transport === undefined) {
    const factory = pretty(logs?.pretty)
    if (factory !== undefined) base.stream = prettyStream(factory)
  }
  return { ...options, logger: base as FastifyServerOptions['logger'] }
}
