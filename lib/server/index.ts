/**
 * One tuned Fastify process: builds the app with the plan's server options and listens.
 * (Foundation stub: the server work replaces the internals, keeping these signatures.)
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyPluginCallback, type FastifyServerOptions } from 'fastify'
import type { Plan } from '../plan/types'

export type AppPlugin = FastifyPluginAsync<any> | FastifyPluginCallback<any>

export interface StartServerOptions {
  /** The user's app: a Fastify plugin, registered like fastify-cli does (encapsulated). */
  app: AppPlugin
  /** Options passed to the app plugin. */
  appOptions?: Record<string, unknown>
  /** Fastify server options from the app module's `options` export or serve(); ours win on tuned keys. */
  fastifyOptions?: FastifyServerOptions
}

export interface RunningServer {
  fastify: FastifyInstance
  /** Where it listens: `http://host:port` or the unix socket path. */
  addresses: string[]
  /** Requests answered so far (max-requests). */
  requestCount (): number
  /** Graceful stop: stop accepting, close idle keep-alive sockets, wait in-flight up to timeoutMs, then force. */
  drain (timeoutMs: number): Promise<void>
}

export async function startServer (plan: Plan, options: StartServerOptions): Promise<RunningServer> {
  const fastify = Fastify({ ...options.fastifyOptions })
  let count = 0
  fastify.addHook('onResponse', async () => { count++ })
  await fastify.register(options.app as FastifyPluginAsync, options.appOptions ?? {})
  const addresses: string[] = []
  if (plan.listen.kind === 'unix') {
    await fastify.listen({ path: plan.listen.path, backlog: plan.listen.backlog })
    addresses.push(plan.listen.path)
  } else {
    for (const a of plan.listen.addresses) {
      addresses.push(await fastify.listen({ host: a.host, port: a.port, backlog: plan.listen.backlog }))
    }
  }
  return {
    fastify,
    addresses,
    requestCount: () => count,
    drain: async (timeoutMs) => {
      const timer = setTimeout(() => fastify.server.closeAllConnections(), timeoutMs).unref()
      await fastify.close()
      clearTimeout(timer)
    }
  }
}
