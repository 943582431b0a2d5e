/**
 * serve(): the launcher in code. Same knobs as the CLI.
 * (Foundation stub: the cluster work replaces it.)
 */
import type { KnobOptions } from './config/knobs'
import type { FastifyServerOptions } from 'fastify'
import type { AppPlugin } from './server/index'
import type { Resources } from './plan/types'

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

export interface ServeHandle {
  role: 'single' | 'primary' | 'worker'
  addresses: string[]
  close (): Promise<void>
}

export async function serve (_options: ServeOptions): Promise<ServeHandle> {
  throw new Error('serve() is not implemented yet')
}
