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
import type { FastifyInstance } from 'fastify'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { kLastRequestAt, type TunedHttp } from './http-server'

/** An idle socket whose latest request arrived this recently belongs to a busy client. */
const RECENT_MS = 100
/** How long busy clients are answered with Connection: close before idle sockets are closed. */
const LINGER_MS = 300

interface SocketWithMessage { _httpMessage?: http.ServerResponse | null, [kLastRequestAt]?: number }

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
  // Under load a keep-alive socket is "idle" only for the microseconds between a response and the
  // client's next request; closing it then, while that request sits in the kernel buffer, resets
  // it (ECONNRESET, seen with autocannon during reloads). So when busy clients are connected, stop
  // accepting but keep serving them for a moment, every response saying Connection: close; a
  // really idle socket (nothing for RECENT_MS) is closed at once either way.
  if (hasBusyIdleSocket(gate.admitted)) {
    if (server.listening) net.Server.prototype.close.call(server) // stop accepting, keep idle sockets
    await sleep(Math.min(LINGER_MS, Math.floor(timeoutMs / 4)))
  }
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

function hasBusyIdleSocket (sockets: Iterable<net.Socket>): boolean {
  const now = performance.now()
  for (const socket of sockets) {
    const s = socket as unknown as SocketWithMessage
    if (s._httpMessage == null && now - (s[kLastRequestAt] ?? -Infinity) < RECENT_MS) return true
  }
  return false
}
