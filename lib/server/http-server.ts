/**
 * The tuned node:http server handed to Fastify through `serverFactory`.
 *
 * Why serverFactory: it is the one place where every Node knob can be set at construction
 * (connectionsCheckingInterval, maxHeaderSize and highWaterMark are constructor-only), and it lets
 * us own the 'connection' path (ConnectionGate) and the request path (the few per-request steps
 * below, all decided at boot so the hot path only tests booleans).
 */
import http from 'node:http'
import type { Socket } from 'node:net'
import type { ServerPlan } from '../plan/types'
import { ConnectionGate, type GateLog } from './connection-gate'
import { IdleSweeper } from './idle-sweeper'
import { kLastRequestAt, requestStage } from './request-stage'
import { SendBudget } from './send-budget'
import { SendTimeout } from './send-timeout'
import { noteQueuedResponse } from './socket-writes'
import { compileTrust, fastifyTrustProxy, isTrustedSocket, markTrust, stripProxyHeaders } from './proxy-headers'
import { ServerStartError } from './errors'
import type { ProbeResponder } from '../ops/health'

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

export interface ServerState {
  draining: boolean
  /** Over the send budget: pipelined requests are answered 503 (send-budget.ts). */
  overSendBudget: boolean
  /** Readiness fails: set at the start of a drain, before drain-delay. */
  unready: boolean
  requests: number
}

export interface TunedHttp {
  /** Fastify's serverFactory. */
  factory: (handler: Handler, opts: unknown) => http.Server
  /** The server, once Fastify called the factory. */
  server (): http.Server
  gate (): ConnectionGate
  sweeper (): IdleSweeper
  state: ServerState
  /** Fastify's trustProxy value (false when nobody is trusted). */
  trustProxy: ((address: string, hop: number) => boolean) | boolean
}

interface SocketInternals {
  encrypted?: boolean
  _readableState?: { highWaterMark: number }
  _writableState?: { highWaterMark: number }
}

export function tunedHttpServer (plan: ServerPlan, userHttp: http.ServerOptions | undefined, log: GateLog, probes?: ProbeResponder): TunedHttp {
  if (plan.headersTimeoutMs > plan.requestTimeoutMs) {
    // node:http's constructor throws ERR_OUT_OF_RANGE for this (pitfall 5); say it in our words.
    throw new ServerStartError(`headers-timeout (${plan.headersTimeoutMs}ms) must not exceed request-timeout (${plan.requestTimeoutMs}ms)`)
  }
  const trust = compileTrust(plan.trustedProxy)
  const trustAll = plan.trustedProxy?.includes('*') === true
  const state: ServerState = { draining: false, overSendBudget: false, unready: false, requests: 0 }
  let server: http.Server | undefined
  let gate: ConnectionGate | undefined
  let sweeper: IdleSweeper | undefined

  const prepareSocket = buildSocketPreparation(plan, trustAll ? undefined : trust)

  const factory = (handler: Handler): http.Server => {
    const options: http.ServerOptions = {
      ...userHttp,
      // Sweep granularity of headers/request timeouts = Waitress's cleanup_interval.
      connectionsCheckingInterval: plan.cleanupIntervalMs,
      headersTimeout: plan.headersTimeoutMs,
      // Fastify sets 0 here (pitfall 6), which disables slowloris protection; we don't.
      requestTimeout: plan.requestTimeoutMs
    }
    if (plan.maxRequestHeaderSize !== undefined) options.maxHeaderSize = plan.maxRequestHeaderSize
    // recv-bytes: Node has no per-recv size (libuv reads 64 KiB slabs); the nearest knob is the
    // socket's readable high-water mark, which the http constructor applies to accepted sockets
    // (Node ≥ 20.1). send-bytes: see buildSocketPreparation.
    if (plan.recvBytes !== undefined) options.highWaterMark = plan.recvBytes

    const listener = buildRequestListener(handler, state, plan.ident, trustAll ? 'none' : trust === undefined ? 'all' : 'untrusted', probes)
    const s = http.createServer(options, listener)
    // Post-response idle time = keep-alive timeout; advertised as `Keep-Alive: timeout=N`.
    s.keepAliveTimeout = plan.keepAliveTimeoutMs
    // server.timeout stays 0: it would also kill slow in-flight handlers (§3.1, observed).
    s.setTimeout(0)

    // Own the 'connection' path: take node:http's listener off the event and call it ourselves
    // when the gate admits the socket. Sockets arrive paused so a waiting one is not read.
    const nodeListeners = s.listeners('connection') as Array<(socket: Socket) => void>
    s.removeAllListeners('connection')
    ;(s as unknown as { pauseOnConnect: boolean }).pauseOnConnect = true // public net.Server property
    const serve = (socket: Socket): void => {
      prepareSocket(socket)
      for (const l of nodeListeners) l.call(s, socket)
      socket.resume()
    }
    gate = new ConnectionGate({ limit: plan.connectionLimit, serve, log, headersTimeoutMs: plan.headersTimeoutMs, stageOf: requestStage })
    s.on('connection', gate.onConnection)
    sweeper = new IdleSweeper(gate.admitted, plan.channelTimeoutMs, plan.headersTimeoutMs, plan.cleanupIntervalMs)
    startSendBounds(s, gate.admitted, plan, log, (over) => { state.overSendBudget = over })
    server = s
    return s
  }

  const need = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('tuned http server not created yet')
    return x
  }
  return {
    factory,
    server: () => need(server),
    gate: () => need(gate),
    sweeper: () => need(sweeper),
    state,
    // '*' still trusts one hop only (Waitress trusted_proxy_count=1): `true` would let Fastify walk
    // the whole client-supplied X-Forwarded-For chain and report its left-most, spoofable entry.
    trustProxy: trust === undefined ? false : fastifyTrustProxy(trust)
  }
}

/**
 * Sending is bounded for as long as the server lives, drains included: a client that stops reading
 * is closed after channel-timeout without progress, and what slow readers hold stays under the
 * send budget.
 */
function startSendBounds (server: http.Server, sockets: ReadonlySet<Socket>, plan: ServerPlan, log: GateLog, onPressure: (over: boolean) => void): void {
  const timeout = new SendTimeout(sockets, plan.channelTimeoutMs, plan.cleanupIntervalMs)
  timeout.start()
  const budget = plan.sendBudgetBytes > 0 ? new SendBudget(sockets, plan.sendBudgetBytes, log, onPressure) : undefined
  budget?.start()
  server.once('close', () => {
    timeout.stop()
    budget?.stop()
  })
}

/** Per-connection set-up, once per socket (never per request). */
function buildSocketPreparation (plan: ServerPlan, trust: ReturnType<typeof compileTrust>): (socket: Socket) => void {
  const https = plan.urlScheme === 'https'
  const sendBytes = plan.sendBytes
  return (socket) => {
    if (trust !== undefined) markTrust(socket, trust)
    const s = socket as unknown as SocketInternals
    // send-bytes: Waitress's flush threshold has no Node equivalent; the writable high-water mark
    // is where Node applies output back-pressure (res.write() returns false, reading pauses), the
    // role Waitress gives outbuf_high_watermark. The http constructor only takes one value for
    // both directions, so the write side is set per socket (the response inherits it).
    if (sendBytes !== undefined && s._writableState !== undefined) s._writableState.highWaterMark = sendBytes
    // url-scheme=https (behind a TLS-terminating proxy): Fastify's request.protocol reads
    // socket.encrypted, after a trusted X-Forwarded-Proto; so a trusted proxy can still say http.
    if (https) s.encrypted = true
  }
}

function buildRequestListener (handler: Handler, state: ServerState, ident: string | undefined, strip: 'none' | 'all' | 'untrusted', probes: ProbeResponder | undefined): Handler {
  const stripAll = strip === 'all'
  const stripUntrusted = strip === 'untrusted'
  return function prodserverRequest (req, res) {
    // The connection gate tells a connection between requests from one that never sent one.
    ;(req.socket as unknown as Record<symbol, number>)[kLastRequestAt] = performance.now()
    // A pipelined request: its response waits in memory behind the current one (send budget).
    if ((req.socket as unknown as { _httpMessage?: unknown })._httpMessage !== res) {
      if (state.overSendBudget) {
        shedPipelined(res)
        return
      }
      noteQueuedResponse(req.socket, res)
    }
    // During a drain every response closes its connection (supervisor reloads lose no request).
    if (state.draining) res.setHeader('connection', 'close')
    if (ident !== undefined) res.setHeader('server', ident)
    // Health/readiness probes: answered here, not counted (max-requests), never seen by the app.
    if (probes !== undefined && probes(req, res)) return
    state.requests++
    if (stripAll || (stripUntrusted && !isTrustedSocket(req.socket))) stripProxyHeaders(req)
    handler(req, res)
  }
}

/** Over the send budget a pipelined request is not run: a short 503, then the connection closes. */
function shedPipelined (res: http.ServerResponse): void {
  res.writeHead(503, { 'retry-after': '1', connection: 'close', 'content-length': '0' })
  res.end()
}
