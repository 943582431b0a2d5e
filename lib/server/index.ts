/**
 * One tuned Fastify process: builds the app with the plan's server options and listens.
 *
 * Everything that can be decided at boot is decided here (which per-request steps exist, trust,
 * header values); the request path only tests booleans (see http-server.ts).
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyPluginCallback, type FastifyServerOptions } from 'fastify'
import type { Plan } from '../plan/types'
import { tunedHttpServer } from './http-server'
import { buildErrorHandler } from './errors'
import { listenAll } from './listen'
import { drainServer } from './drain'

export { ServerStartError } from './errors'

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
  /** Requests received so far (max-requests). Counted as they arrive, no hook involved. */
  requestCount (): number
  /** Graceful stop: stop accepting, close idle keep-alive sockets, wait in-flight up to timeoutMs, then force. */
  drain (timeoutMs: number): Promise<void>
  /** True once drain() was called. */
  readonly draining: boolean
  /** Connections being served and waiting at the connection limit, right now. */
  connections (): { active: number, queued: number }
}

/**
 * Fastify options we own. Every one of them is a knob of the plan or a decision the knobs depend
 * on, so the app's own options cannot undo them.
 */
function ourFastifyOptions (plan: Plan, factory: (...args: any[]) => any, trustProxy: unknown): FastifyServerOptions {
  const s = plan.server
  const o: Record<string, unknown> = {
    serverFactory: factory,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    requestTimeout: s.requestTimeoutMs,
    // 0 = off: Fastify's connectionTimeout is server.timeout, which kills slow in-flight requests.
    connectionTimeout: 0,
    trustProxy,
    // Drain serves late requests with Connection: close instead of 503 (see drain.ts).
    return503OnClosing: false,
    // We close idle sockets ourselves during drain (fastify#7044).
    forceCloseConnections: false
  }
  if (s.maxRequestBodySize !== undefined) o.bodyLimit = s.maxRequestBodySize
  return o as FastifyServerOptions
}

export async function startServer (plan: Plan, options: StartServerOptions): Promise<RunningServer> {
  const user = options.fastifyOptions ?? {}
  let fastify: FastifyInstance | undefined
  const tuned = tunedHttpServer(plan.server, (user as { http?: import('node:http').ServerOptions }).http, {
    warn: (msg) => fastify?.log.warn(msg),
    info: (msg) => fastify?.log.info(msg)
  })
  const f: FastifyInstance = Fastify({ ...user, ...ourFastifyOptions(plan, tuned.factory, tuned.trustProxy) } as FastifyServerOptions)
  fastify = f
  // With a serverFactory Fastify applies none of its socket options itself.
  if (typeof user.maxRequestsPerSocket === 'number' && user.maxRequestsPerSocket > 0) {
    tuned.server().maxRequestsPerSocket = user.maxRequestsPerSocket
  }
  f.setErrorHandler(buildErrorHandler(plan.server.exposeTracebacks))
  // Encapsulated, like fastify-cli: the app's hooks and decorators stay in its own context
  // (unless the app itself is wrapped with fastify-plugin).
  await f.register(options.app as FastifyPluginAsync, options.appOptions ?? {})

  let listening
  try {
    listening = await listenAll(f, plan.listen, plan.server, tuned.gate().onConnection)
  } catch (err) {
    await f.close().catch(() => {})
    throw err
  }
  tuned.sweeper().start()
  for (const a of listening.addresses.slice(1)) f.log.info(`Server listening at ${a}`)

  let drained: Promise<void> | undefined
  const extra = listening.extra
  return {
    fastify: f,
    addresses: listening.addresses,
    requestCount: () => tuned.state.requests,
    drain: (timeoutMs) => {
      drained ??= drainServer(f, tuned, extra, timeoutMs)
      return drained
    },
    get draining () { return tuned.state.draining },
    connections: () => ({ active: tuned.gate().admitted.size, queued: tuned.gate().queued })
  }
}
