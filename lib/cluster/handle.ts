/**
 * What serve() gives back, whatever role this process ended up playing, and what every role
 * needs to build the app.
 */
import type { FastifyServerOptions } from 'fastify'
import type { AppPlugin } from '../server/index'

export interface ServeHandle {
  /** `single`: one process serves; `primary`: this process supervises workers; `worker`: forked by a primary. */
  role: 'single' | 'primary' | 'worker'
  /** Where the server listens (in the primary: as reported by the first ready worker). */
  addresses: string[]
  /** Graceful stop: drain within graceful-timeout. In a worker, drains this worker only. */
  close (): Promise<void>
}

/** How a process that serves builds the app (single mode and workers). */
export interface AppSource {
  app: AppPlugin | string
  appOptions?: Record<string, unknown>
  /** Fastify server options given to serve(); they win over the module's `options` export. */
  fastify?: FastifyServerOptions
}

/** The same handle with more to do on close() (a watcher, a timer); addresses stay live. */
export function withCloseStep (handle: ServeHandle, before: () => Promise<void> | void): ServeHandle {
  return {
    role: handle.role,
    get addresses () { return handle.addresses },
    close: async () => { await before(); await handle.close() }
  }
}
