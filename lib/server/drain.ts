/**
 * Graceful drain (SIGTERM, reloads, max-requests recycling, scale-down).
 *
 * A connection with a request in flight is always finished; a connection without one never holds
 * the drain up for more than IDLE_LINGER_MS; and a connection is never closed while a proxy may be
 * sending on it, as far as that can be known:
 *  1. Stop accepting on every listener, keeping the open connections (http.Server#close would close
 *     the idle ones at once: Node ≥ 19 calls closeIdleConnections() there). First, so that the new
 *     connections the next step makes a proxy open are refused — nothing sent, a proxy retries them
 *     elsewhere — instead of queueing in a backlog that closing the listener would reset (measured
 *     behind nginx with two instances: resets on 2 stops of 4 with the opposite order, none since).
     In cluster mode on a stop, the primary first closes node:cluster's shared listener and hands
     out the connections it had accepted (`stopAccepting`): node:cluster would reset them when
     the last worker closes (cluster/shared-listeners.ts).
 *  2. `draining` on: every request that starts from now on is SERVED (Fastify's return503OnClosing
 *     is off: the supervisor's zero-failure reload relies on requests already on their way being
 *     answered) with `Connection: close`, so the client itself retires the connection, cleanly.
 *  3. In-flight responses whose headers are not out yet get `Connection: close` too.
 *  4. Connections waiting at the gate are admitted (served with Connection: close), not dropped.
 *  5. Idle connections (node:http's own notion: no request begun, none pending) are retired:
 *     - when other workers keep serving (`handOff`, reload/recycle/scale-down), each is moved to one
 *       of them through the primary, file descriptor and unread bytes included: a proxy that reuses
 *       the connection at that very moment is served by the other worker, nothing is reset;
 *     - otherwise (stop, single process) one that stayed idle IDLE_LINGER_MS is closed. A keep-alive
 *       proxy (nginx's upstream cache) reuses its most recently used connection first, so a
 *       connection still unused after the linger sits at the cold end of its pool, and one that is
 *       reused is answered with Connection: close (step 2). Closing an idle connection can always
 *       race a client that picks it at that instant — HTTP/1.1 has no way around it — the linger
 *       makes that a connection the client had left alone.
 *  6. When no connection is left — or at timeoutMs, when the rest is destroyed — fastify.close()
 *     runs the app's onClose hooks (database pools close after the last request, not before).
 */
import type http from 'node:http'
import type { FastifyInstance } from 'fastify'
import net, { type Socket } from 'node:net'
import type { TunedHttp } from './http-server'
import { freezeForTransfer, idleConnections, thaw } from './idle-connections'
import { closeWhenAcceptQueueEmpty, type ListenHandle } from './accept-queue'

/**
 * How long a connection must stay idle during a drain before it is closed. Far above the gap
 * between two requests on a connection a busy proxy is using (measured behind nginx: see README,
 * "Drain behind a proxy"), and short enough that a silent connection never delays a stop by more
 * than about half a second.
 */
export const IDLE_LINGER_MS = 500
/** At most this long (and half the drain's timeout) serving what waits in the accept queue first. */
const ACCEPT_QUEUE_WAIT_MS = 5000
/** How often idle connections are looked for during a drain. */
const POLL_MS = 25

export interface DrainOptions {
  /**
   * Other processes keep serving: send this idle connection's handle to one of them. Resolves true
   * once the handle is on its way (our copy may then be closed), false when it could not be sent.
   */
  handOff?: (handle: object) => Promise<boolean>
  /**
   * Called before this process closes its listeners; resolves once the whole server has stopped
   * accepting and holds no connection on its way to a listener (in cluster mode: the primary
   * closed node:cluster's shared listener and handed out what it had accepted).
   */
  stopAccepting?: () => Promise<void>
  /**
   * Resolves once no listener of the whole server accepts any more (in cluster mode: every
   * worker's, so the primary's shared one is closed); connections are not told to close before.
   */
  listenersClosed?: () => Promise<void>
}

interface SocketWithMessage { _httpMessage?: http.ServerResponse | null }

export async function drainServer (fastify: FastifyInstance, tuned: TunedHttp, extra: net.Server[], timeoutMs: number, options: DrainOptions = {}): Promise<void> {
  const server = tuned.server()
  const gate = tuned.gate()
  // Listeners first: from now on a client that opens a new connection is refused (nothing sent,
  // a proxy retries elsewhere) rather than accepted into a backlog that closing would reset.
  await options.stopAccepting?.()
  const listeners = [server, ...extra].filter((s) => s.listening)
  const handles = listeners.map((s) => (s as unknown as { _handle?: ListenHandle | null })._handle).filter((h): h is ListenHandle => h != null)
  await closeWhenAcceptQueueEmpty(tcpPorts(listeners), handles, Math.min(ACCEPT_QUEUE_WAIT_MS, timeoutMs / 2), () => {
    if (server.listening) net.Server.prototype.close.call(server)
    for (const s of extra) s.close()
  })
  await options.listenersClosed?.()
  tuned.state.draining = true
  tuned.sweeper().stop()

  for (const socket of gate.admitted) {
    // node:http keeps the response being written on socket._httpMessage (internal, stable since
    // Node 0.x); it is the only handle on requests that started before the drain.
    const res = (socket as unknown as SocketWithMessage)._httpMessage
    if (res != null && !res.headersSent) res.setHeader('connection', 'close')
  }
  gate.openAll()

  const retire = new IdleRetirement(server, gate.admitted, options.handOff)
  const poll = setInterval(() => retire.sweep(), POLL_MS)
  retire.sweep()
  const force = setTimeout(() => {
    server.closeAllConnections()
    gate.destroyAll()
  }, timeoutMs)
  force.unref()
  try {
    await gate.whenEmpty()
  } finally {
    clearTimeout(force)
    clearInterval(poll)
  }
  await fastify.close()
}

/** The TCP ports these servers listen on (a unix socket has none). */
function tcpPorts (servers: net.Server[]): Set<number> {
  const ports = new Set<number>()
  for (const s of servers) {
    const a = s.listening ? s.address() : null
    if (a !== null && typeof a === 'object') ports.add(a.port)
  }
  return ports
}

/** Step 5: moves or closes the idle connections, one sweep at a time. */
class IdleRetirement {
  /** When each idle connection was first seen idle (performance.now()). */
  private readonly idleSince = new Map<Socket, number>()
  private readonly moving = new Set<Socket>()
  /** Connections whose hand-off failed: they are closed after the linger instead. */
  private readonly stay = new WeakSet<Socket>()

  constructor (
    private readonly server: http.Server,
    private readonly sockets: ReadonlySet<Socket>,
    private readonly handOff: DrainOptions['handOff']
  ) {}

  sweep (): void {
    const now = performance.now()
    const idle = idleConnections(this.server, this.sockets)
    for (const socket of this.sockets) {
      if (this.moving.has(socket)) continue
      if (!idle.has(socket)) {
        this.idleSince.delete(socket)
        continue
      }
      if (this.handOff !== undefined && !this.stay.has(socket) && this.move(socket, this.handOff)) continue
      const since = this.idleSince.get(socket)
      if (since === undefined) this.idleSince.set(socket, now)
      else if (now - since >= IDLE_LINGER_MS) {
        this.idleSince.delete(socket)
        socket.destroy()
      }
    }
  }

  private move (socket: Socket, handOff: (handle: object) => Promise<boolean>): boolean {
    const handle = freezeForTransfer(socket)
    if (handle === undefined) return false
    this.moving.add(socket)
    this.idleSince.delete(socket)
    void handOff(handle).then((sent) => {
      this.moving.delete(socket)
      if (sent) {
        // Our copy of the descriptor only: the connection itself lives on in the other worker.
        socket.destroy()
      } else {
        thaw(handle)
        this.stay.add(socket)
      }
    })
    return true
  }
}
