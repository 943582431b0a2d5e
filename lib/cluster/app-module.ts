/**
 * The user's app: a Fastify plugin given in code, or a module path loaded like fastify-cli does
 * (default export or module.exports; optional named export `options` = Fastify server options;
 * a relative path resolves against the working directory).
 *
 * In cluster mode only workers load the app (Gunicorn without --preload), so every worker forked
 * by a reload reads the code from disk again (gunicorn#2449: preload makes HUP unable to reload).
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import { startServer, type AppPlugin, type RunningServer } from '../server/index'
import type { Plan } from '../plan/types'
import type { AppSource } from './handle'
import { withLogPlan } from '../logs/app-logger'
import { typescriptHint } from '../launch/typescript-hint'
import { hasLoaderFlags } from '../launch/preload'

export class AppLoadError extends Error {
  readonly exitCode = 1
  /** `cause`: the error the module threw while loading (its stack says where). */
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AppLoadError'
  }
}

/**
 * Where a boot error happened, for stderr: the stack of what the app threw (file:line first for a
 * syntax error), or nothing when the message says it all (module not found, not a plugin).
 */
export function bootErrorStack (err: unknown): string | undefined {
  if (err instanceof AppLoadError) return err.cause instanceof Error ? err.cause.stack : undefined
  return err instanceof Error ? err.stack : undefined
}

export interface LoadedApp {
  plugin: AppPlugin
  /** The module's `options` export (Fastify server options), if any. */
  fastifyOptions?: FastifyServerOptions
}

export function resolveAppPath (modulePath: string, cwd = process.cwd()): string {
  return path.resolve(cwd, modulePath)
}

// TypeScript compiles `import()` to require() under module=commonjs; ESM-only apps need the real one.
const dynamicImport = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<Record<string, unknown>>

export async function loadApp (app: AppPlugin | string): Promise<LoadedApp> {
  if (typeof app === 'function') return { plugin: app }
  if (typeof app !== 'string' || app === '') throw new AppLoadError('app must be a Fastify plugin or a module path')
  const file = resolveAppPath(app)
  let mod: Record<string, unknown>
  try {
    mod = require(file) as Record<string, unknown>
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') {
      try {
        mod = await dynamicImport(pathToFileURL(file).href)
      } catch (e) {
        throw new AppLoadError(`cannot load app module ${app}: ${firstLine(e)}${hintFor(file, e)}`, { cause: e })
      }
    } else {
      throw new AppLoadError(`cannot load app module ${app}: ${firstLine(err)}${hintFor(file, err)}`, notFound(err, file) ? undefined : { cause: err })
    }
  }
  const plugin = pickPlugin(mod)
  if (plugin === undefined) {
    throw new AppLoadError(`app module ${app} does not export a Fastify plugin; accepted: a function as module.exports or default export`)
  }
  const options = (mod as { options?: unknown }).options
  return { plugin, fastifyOptions: typeof options === 'object' && options !== null ? options as FastifyServerOptions : undefined }
}

/** For a TypeScript app node could not load: how to make it load (launch/typescript-hint.ts). */
function hintFor (file: string, err: unknown): string {
  const hint = typescriptHint(file, err, {
    version: process.versions.node,
    stripping: Boolean((process.features as { typescript?: unknown }).typescript),
    loaderGiven: hasLoaderFlags(process.execArgv, process.env.NODE_OPTIONS)
  })
  return hint !== undefined ? `; ${hint}` : ''
}

/** The app file itself is missing: the message is the whole story (a missing dependency is not). */
function notFound (err: unknown, file: string): boolean {
  const e = err as NodeJS.ErrnoException
  return e.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${file}'`)
}

function pickPlugin (mod: unknown): AppPlugin | undefined {
  if (typeof mod === 'function') return mod as AppPlugin
  const d = (mod as { default?: unknown } | null)?.default
  if (typeof d === 'function') return d as AppPlugin
  // A TS/ESM module compiled to CJS and then imported: { default: { default: fn } }.
  const dd = (d as { default?: unknown } | null | undefined)?.default
  return typeof dd === 'function' ? dd as AppPlugin : undefined
}

/**
 * Load the app and serve it with the plan (single process and cluster worker alike). The module's
 * own `options` export is the base; Fastify options given to serve() win over it; the tuned
 * options of the plan win over both (startServer).
 */
export async function startAppServer (plan: Plan, source: AppSource, log: FastifyBaseLogger): Promise<RunningServer> {
  const loaded = await loadApp(source.app)
  return await startServer(plan, {
    app: loaded.plugin,
    appOptions: source.appOptions,
    fastifyOptions: withLogPlan({ ...loaded.fastifyOptions, ...source.fastify }, plan.logs),
    log
  })
}

export function firstLine (err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? text
}
