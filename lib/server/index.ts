/**
 * One tuned Fastify process: builds the app with the plan's server options and listens.
 *
 * Everything that can be decided at boot is decided here (which per-request steps exist, trust,
 * header values); the request path only tests booleans (see http-server.ts).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyPluginCallback, type FastifyServerOptions } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Plan } from '../plan/types'
import { tunedHttpServer } from './http-server'
import { buildErrorHandler } from './errors'
import { listenAll } from './listen'
import { drainServer, type DrainOptions } from './drain'
import { buildProbeResponder, type StoreProbe } from '../ops/health'
import { ProcessMetrics } from '../ops/process-metrics'
import type { MetricsJSON } from '../ops/types'

export { ServerStartError } from './errors'

export type AppPlugin = FastifyPluginAsync<any> | FastifyPluginCallback<any>

export interface StartServerOptions {
  /** The user's app: a Fastify plugin, registered like fastify-cli does (encapsulated). */
  app: AppPlugin
  /** Options passed to the app plugin. */
  appOptions?: Record<string, unknown>
  /** Fastify server options from the app module's `options` export or serve(); ours win on tuned keys. */
  fastifyOptions?: FastifyServerOptions
  /**
   * Where our own lines (connection-limit saturation, the session store in use) go when the app's
   * Fastify logger is off; with a Fastify logger they go to fastify.log.
   */
  log?: FastifyBaseLogger
}

export interface RunningServer {
  fastify: FastifyInstance
  /** Where it listens: `http://host:port` or the unix socket path. */
  addresses: string[]
  /** Requests received so far (max-requests). Counted as they arrive, no hook involved. */
  requestCount (): number
  /**
   * Graceful stop: readiness fails at once; after unreadyMs (drain-delay, still serving normally)
   * stop accepting, retire idle keep-alive sockets (moved to another worker with `handOff`, else
   * closed once idle for a moment), wait in-flight up to timeoutMs, then force.
   */
  drain (timeoutMs: number, unreadyMs?: number, options?: DrainOptions): Promise<void>
  /** True once drain() was called. */
  readonly draining: boolean
  /** Connections being served and waiting at the connection limit, right now. */
  connections (): { active: number, queued: number }
  /** This process's metrics in prom-client's JSON form; only when metrics-port is set. */
  collectMetrics?: () => Promise<MetricsJSON>
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
  const appLogs = (user.logger !== undefined && user.logger !== false) || user.loggerInstance !== undefined
  const ownLog = (): FastifyBaseLogger | undefined => appLogs ? fastify?.log : options.log ?? fastify?.log
  let store: StoreProbe | undefined
  const ops = plan.ops ?? { drainDelayMs: 0, metricsHost: '127.0.0.1' }
  const tuned = tunedHttpServer(plan.server, (user as { http?: import('node:http').ServerOptions }).http, {
    warn: (msg) => ownLog()?.warn(msg),
    info: (msg) => ownLog()?.info(msg)
  }, buildProbeResponder(ops, {
    unready: () => tuned.state.unready,
    store: () => store
  }))
  const f: FastifyInstance = Fastify({ ...user, ...ourFastifyOptions(plan, tuned.factory, tuned.trustProxy) } as FastifyServerOptions)
  fastify = f
  // With a serverFactory Fastify applies none of its socket options itself.
  if (typeof user.maxRequestsPerSocket === 'number' && user.maxRequestsPerSocket > 0) {
    tuned.server().maxRequestsPerSocket = user.maxRequestsPerSocket
  }
  f.setErrorHandler(buildErrorHandler(plan.server.exposeTracebacks))
  // The sessions plugin decorates the context the app registered it in, which the root cannot
  // see (encapsulation): remember every context so readiness can find fastify.sessionBackend.
  const contexts: FastifyInstance[] = [f]
  if (ops.readyPath !== undefined || !appLogs) f.addHook('onRegister', (instance) => { contexts.push(instance) })
  let metrics: ProcessMetrics | undefined
  if (ops.metricsPort !== undefined) {
    const m = new ProcessMetrics(() => ({ active: tuned.gate().admitted.size, queued: tuned.gate().queued }))
    metrics = m
    // On the root before the app, so it covers every route and the 404 handler. Probes never get here.
    f.addHook('onResponse', (request, reply, done) => {
      m.http.observe(request.method, reply.statusCode, reply.elapsedTime)
      done()
    })
  }
  // Encapsulated, like fastify-cli: the app's hooks and decorators stay in its own context
  // (unless the app itself is wrapped with fastify-plugin).
  await f.register(options.app as FastifyPluginAsync, options.appOptions ?? {})

  let listening
  try {
    listening = await listenAll(f, plan.listen, plan.server, tuned.gate().onConnection)
  } catch (err) {
    metrics?.close()
    await f.close().catch(() => {})
    throw err
  }
  tuned.sweeper().start()
  store = findSessionBackend(contexts)
  if (store !== undefined && !appLogs) {
    options.log?.info({ sessionStore: store.kind, reason: (store as { reason?: string }).reason }, `sessions: ${store.kind} store`)
  }
  contexts.length = 0
  for (const a of listening.addresses.slice(1)) f.log.info(`Server listening at ${a}`)

  let drained: Promise<void> | undefined
  const extra = listening.extra
  return {
    fastify: f,
    addresses: listening.addresses,
    requestCount: () => tuned.state.requests,
    drain: (timeoutMs, unreadyMs = 0, drainOptions) => {
      drained ??= unreadyThenDrain(tuned.state, unreadyMs, ownLog()).then(() => drainServer(f, tuned, extra, timeoutMs, drainOptions)).finally(() => metrics?.close())
      return drained
    },
    get draining () { return drained !== undefined || tuned.state.draining },
    connections: () => ({ active: tuned.gate().admitted.size, queued: tuned.gate().queued }),
    collectMetrics: metrics === undefined ? undefined : () => (metrics as ProcessMetrics).collect()
  }
}

/**
 * Readiness fails first and the server keeps serving normally for unreadyMs, so a load balancer
 * notices (its probe interval × threshold) and stops sending before connections are closed.
 */
async function unreadyThenDrain (state: { unready: boolean, draining: boolean }, unreadyMs: number, log: FastifyBaseLogger | undefined): Promise<void> {
  state.unready = true
  if (unreadyMs <= 0) return
  log?.info({ drainDelayMs: unreadyMs }, 'unready: readiness answers 503 before the drain starts')
  await sleep(unreadyMs)
}

function findSessionBackend (contexts: FastifyInstance[]): StoreProbe | undefined {
  for (const c of contexts) {
    const backend = (c as { sessionBackend?: StoreProbe }).sessionBackend
    if (backend !== undefined && backend !== null) return backend
  }
  return undefined
}
