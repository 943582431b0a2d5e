/**
 * Which connections node:http itself considers idle, and freezing one so that it can move to
 * another process (a draining worker hands its idle keep-alive connections back to the primary).
 *
 * "Idle" is node:http's own definition, the one closeIdleConnections() uses: the socket's parser
 * has not begun a request since its last complete one (ConnectionsList.idle(), C++ side), and no
 * response is pending. Node keeps that list under an internal symbol ('http.server.connections',
 * the same in Node 20, 22 and 24); without it only connections that never sent a byte are known
 * idle (test/server-drain.test.ts checks the list is found, so a Node upgrade that renames it fails
 * loudly instead of silently degrading).
 *
 * A parser that saw no byte of a new request does not mean the kernel holds none: under load the
 * event loop reads late, and nginx's next request may be sitting unread. That is exactly why a
 * connection is moved rather than closed (close() with unread bytes sends a reset): the unread
 * bytes travel with the file descriptor.
 */
import type http from 'node:http'
import type { Socket } from 'node:net'

interface ParserLike { socket?: Socket | null }
interface ConnectionsList { idle (): ParserLike[] }
interface StreamHandle { readStop (): number, readStart (): number, reading?: boolean, writeQueueSize?: number }
interface SocketInternals { _handle?: StreamHandle | null, _httpMessage?: http.ServerResponse | null }

function connectionsList (server: http.Server): ConnectionsList | undefined {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections')
  const list = key === undefined ? undefined : (server as unknown as Record<symbol, unknown>)[key]
  return typeof (list as ConnectionsList | undefined)?.idle === 'function' ? list as ConnectionsList : undefined
}

/**
 * Sockets with no request begun and no response pending. node:http counts a connection that never
 * sent a byte as active (its parser starts the headers clock at connect, against idle-connection
 * floods), so those are added here: nothing read means nothing half-parsed. Without node:http's
 * list (a future Node) only those are known idle.
 */
export function idleConnections (server: http.Server, sockets: Iterable<Socket>): Set<Socket> {
  const list = connectionsList(server)
  const betweenRequests = new Set<Socket>()
  for (const parser of list?.idle() ?? []) if (parser.socket != null) betweenRequests.add(parser.socket)
  const idle = new Set<Socket>()
  for (const socket of sockets) {
    if (socket.destroyed || socket.writableLength > 0) continue
    const res = (socket as unknown as SocketInternals)._httpMessage
    if (res != null && !res.writableFinished) continue
    if (betweenRequests.has(socket) || socket.bytesRead === 0) idle.add(socket)
  }
  return idle
}

/** False when node:http does not expose its connection list (then only silent sockets are known idle). */
export function knowsIdleConnections (server: http.Server): boolean {
  return connectionsList(server) !== undefined
}

/**
 * Stops reading an idle socket and returns its handle, ready to be sent to another process; from
 * now on every byte the client sends stays in the kernel. Undefined when the socket cannot move
 * (bytes buffered in either direction, a response still attached, no stream handle).
 */
export function freezeForTransfer (socket: Socket): StreamHandle | undefined {
  const s = socket as unknown as SocketInternals
  const handle = s._handle
  if (handle == null || typeof handle.readStop !== 'function' || s._httpMessage != null) return undefined
  if (socket.readableLength > 0 || socket.writableLength > 0 || (handle.writeQueueSize ?? 0) > 0) return undefined
  handle.readStop()
  return handle
}

/** The transfer failed: the socket goes on being served here. */
export function thaw (handle: StreamHandle): void {
  if (handle.reading === true) handle.readStart()
}
