/**
 * How much of a connection's response is still in this process, and how much the kernel has taken.
 *
 * A response written with res.end(body) is handed to the socket whole; what the kernel does not
 * take at once stays in user space until the client reads (for a string, libuv holds a malloc'd
 * copy of the rest, outside the V8 heap and its cap). `writableLength` counts those bytes (the
 * chunk being written included, as it is held until written), and pipelined responses waiting for
 * their turn hold theirs (slowhttptest -X sends several requests per connection). Progress is read from libuv: bytes
 * dispatched to the handle minus its write queue (internal fields, present in Node 20, 22 and 24;
 * without them only whole chunks count as progress).
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

interface WriteInternals {
  _bytesDispatched?: number
  _handle?: { writeQueueSize?: number } | null
}

const kQueuedResponses = Symbol('prodserver.queuedResponses')

type WithQueue = Socket & { [kQueuedResponses]?: Set<ServerResponse> }

/**
 * A pipelined request's response waits behind the one being written: node:http keeps its bytes in
 * the response itself until its turn (HTTP/1.1 answers in order), where the socket does not count
 * them. Called by the request listener only for such a response.
 */
export function noteQueuedResponse (socket: Socket, res: ServerResponse): void {
  const s = socket as WithQueue
  const queue = s[kQueuedResponses] ??= new Set()
  queue.add(res)
  res.once('close', () => queue.delete(res))
}

/** Response bytes held in this process for the socket, not yet taken by the kernel. */
export function unsentBytes (socket: Socket): number {
  let bytes = socket.writableLength
  const queue = (socket as WithQueue)[kQueuedResponses]
  if (queue !== undefined) {
    // Once its turn comes a response writes through the socket, already counted above.
    for (const res of queue) if (res.socket == null) bytes += res.writableLength
  }
  return bytes
}

/** Bytes the kernel has taken from this socket so far: grows exactly when the client reads. */
export function sentBytes (socket: Socket): number {
  const s = socket as unknown as WriteInternals
  const queued = s._handle?.writeQueueSize
  if (typeof s._bytesDispatched === 'number' && typeof queued === 'number') return s._bytesDispatched - queued
  return socket.bytesWritten - socket.writableLength
}
