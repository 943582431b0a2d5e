/**
 * Where a connection is in its request/response cycle, read from what node:http already keeps on
 * the socket, so the request path does no extra bookkeeping. The connection gate uses it to pick
 * whom to close under pressure: a connection is only worth its slot once it has delivered a
 * complete request.
 */
import type http from 'node:http'
import type { Socket } from 'node:net'

/** When the socket's latest request arrived (performance.now()), stamped by the request listener. */
export const kLastRequestAt = Symbol('prodserver.lastRequestAt')

/** What node:http writes when a request head takes longer than headers-timeout. */
export const REQUEST_TIMEOUT_RESPONSE = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n'

export type RequestStage =
  /** Admitted, no request head yet: silent, or headers still trickling in (slowloris). */
  | 'before-request'
  /** Head received, body still arriving (slow body); the handler has not got a complete request. */
  | 'receiving-body'
  /** A complete request is being handled or its response written: never cut. */
  | 'in-flight'
  /** Keep-alive: the last response is done, the next request has not arrived (or is partial). */
  | 'between-requests'
  /** Handed to an 'upgrade'/'connect' handler (WebSocket, tunnel): not HTTP any more, not ours to judge. */
  | 'taken-over'

interface HttpSocketInternals {
  /** node:http's parser while it owns the socket; set to null when an upgrade takes the socket over. */
  parser?: unknown
  /** The response node:http is writing on this socket (internal, stable since Node 0.x; drain.ts reads it too). */
  _httpMessage?: http.ServerResponse | null
  [kLastRequestAt]?: number
}

export function lastRequestAt (socket: Socket): number | undefined {
  return (socket as unknown as HttpSocketInternals)[kLastRequestAt]
}

export function requestStage (socket: Socket): RequestStage {
  const s = socket as unknown as HttpSocketInternals
  if (s.parser == null) return 'taken-over'
  const res = s._httpMessage
  if (res != null) return res.req?.complete === false ? 'receiving-body' : 'in-flight'
  return s[kLastRequestAt] === undefined ? 'before-request' : 'between-requests'
}

/** True for the stages in which the client has not delivered a complete request. */
export function awaitingRequest (stage: RequestStage): boolean {
  return stage === 'before-request' || stage === 'receiving-body'
}
