/**
 * Graceful drain (SIGTERM, reloads, max-requests recycling).
 *
 * Order matters:
 *  1. `draining` on: every request that starts from now on answers with `Connection: close`
 *     and is SERVED — Fastify's return503OnClosing is off, because the supervisor's zero-failure
 *     reload relies on requests already on their way to this worker being answered.
 *  2. In-flight responses whose headers are not out yet get `Connection: close` too.
 *  3. Stop accepting (all listeners) and close idle keep-alive sockets NOW: Fastify 5.12's own
 *     'idle' close path is unreachable (fastify#7044, pitfall 7), so close() would otherwise wait
 *     the whole keep-alive timeout.
 *  4. Connections still waiting at the gate are admitted (served with Connection: close) rather
 *     than dropped.
 *  5. When no connection is left — or at timeoutMs, when the rest is destroyed — fastify.close()
 *     runs the app's onClose hooks (database pools close after the last request, not before).
 */
import type http from 'node:http'
import type net from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { TunedHttp } from './http-server'

interface SocketWithMessage { _httpMessage?: http.ServerResponse | null }

export async function drainServer (fastify: FastifyInstance, tuned: TunedHttp, extra: net.Server[], timeoutMs: number): Promise<void> {
  const server = tuned.server()
  const gate = tuned.gate()
  tuned.state.draining = true
  tuned.sweeper().stop()

  for (const socket of gate.admitted) {
    // node:http keeps the response being written on socket._httpMessage (internal, stable since
    // Node 0.x); it is the only handle on requests that started before the drain.
    const res = (socket as unknown as SocketWithMessage)._httpMessage
    if (res == null) continue
    if (!res.headersSent) res.setHeader('connection', 'close')
    else res.once('finish', () => setImmediate(() => server.closeIdleConnections()))
  }

  for (const s of extra) s.close()
  // http.Server#close stops accepting and calls closeIdleConnections() (Node ≥ 19).
  if (server.listening) server.close()
  else server.closeIdleConnections()
  gate.openAll()

  const force = setTimeout(() => {
    server.closeAllConnections()
    gate.destroyAll()
  }, timeoutMs)
  force.unref()
  try {
    await gate.whenEmpty()
  } finally {
    clearTimeout(force)
  }
  await fastify.close()
}
