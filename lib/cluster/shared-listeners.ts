/**
 * node:cluster's shared listeners, held so that a stop can close them before any worker does.
 *
 * With round-robin scheduling the primary listens for its workers: node:cluster's RoundRobinHandle
 * creates a net.Server through `net.createServer`, takes over its libuv handle on 'listening'
 * (setting the server's `_handle` to null) and closes it only when the last worker has closed its
 * own listener (lib/internal/cluster/round_robin_handle.js — the same in Node 20, 22 and 24). At
 * that moment it also closes the connections it accepted and had not handed to a worker yet: a
 * proxy that had already sent a request on one gets a reset (nginx: `recv() failed (104)`, a 502
 * for a POST). Measured behind nginx with two instances and more clients than nginx's pool: 15
 * POSTs reset on one stop of two. Closing the listening handle ourselves first lets the primary
 * hand every connection it already accepted to a worker that still serves it, and new connects are
 * refused (nothing sent: a proxy retries them on another instance).
 *
 * The handles are recognised by what RoundRobinHandle does to its server, not by its private
 * fields: a server whose `_handle` is gone right after its own 'listening' event.
 */
import net from 'node:net'

interface ListenHandle {
  close (callback?: () => void): void
  listen?: (backlog: number) => number
  getsockname?: (out: { port?: number }) => number
}
interface ServerInternals { _handle?: ListenHandle | null }

const shared = new Set<ListenHandle>()
let watching = false

/** Call in the primary before the first worker listens. Idempotent. */
export function watchSharedListeners (): void {
  if (watching) return
  watching = true
  const create = net.createServer
  net.createServer = function createServer (this: unknown, ...args: unknown[]): net.Server {
    const server = (create as (...a: unknown[]) => net.Server).apply(this, args)
    server.once('listening', () => {
      const handle = (server as unknown as ServerInternals)._handle
      // RoundRobinHandle's own 'listening' listener, registered after this one, takes the handle.
      process.nextTick(() => {
        if (handle != null && (server as unknown as ServerInternals)._handle === null) shared.add(handle)
      })
    })
    return server
  } as typeof net.createServer
}

/** The TCP ports of the shared listeners (unix sockets have none). */
export function sharedListenerPorts (): Set<number> {
  const ports = new Set<number>()
  for (const handle of shared) {
    const out: { port?: number } = {}
    if (typeof handle.getsockname === 'function' && handle.getsockname(out) === 0 && typeof out.port === 'number') ports.add(out.port)
  }
  return ports
}

/** The shared listeners' handles (to shrink their backlog before closing them). */
export function sharedListenerHandles (): ListenHandle[] {
  return [...shared]
}

/**
 * Closes every shared listener: from now on the kernel refuses new connections to them. Closing a
 * handle node:cluster already closed (every worker gone) does nothing; node:cluster's own close
 * later does nothing either. Returns how many were open to be closed.
 */
export function closeSharedListeners (): number {
  const count = shared.size
  for (const handle of shared) handle.close()
  shared.clear()
  return count
}
