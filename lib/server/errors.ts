/**
 * Errors of the server layer, and the production error handler.
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

/** A start-up failure the user can fix: the message is one line naming the setting and what is wrong. */
export class ServerStartError extends Error {
  readonly code: string
  constructor (message: string, code = 'PRODSERVER_START') {
    super(message)
    this.name = 'ServerStartError'
    this.code = code
  }
}

type ErrorLike = Partial<FastifyError> & { status?: number, headers?: Record<string, string | number | string[]> }

function statusOf (error: ErrorLike | null | undefined, reply: FastifyReply): number {
  const s = error?.statusCode ?? error?.status
  if (typeof s === 'number' && s >= 400 && s <= 599) return s
  return reply.statusCode >= 400 && reply.statusCode <= 599 ? reply.statusCode : 500
}

/**
 * Root error handler. Fastify's default handler echoes `error.message` in 500 bodies (research
 * pitfall 15: a thrown `Error('db password …')` reaches the client); Waitress with
 * expose_tracebacks=False answers a generic body. So for 5xx we log the real error and send only
 * the status text (plus message and stack when expose-tracebacks is on). An error's own status
 * (e.g. a session store's 503) and headers (`Retry-After`) are kept: they are deliberate.
 * 4xx errors (validation, body too large, …) are handed back to Fastify's default handler
 * unchanged, since their messages are written for clients.
 */
export function buildErrorHandler (exposeTracebacks: boolean) {
  return function prodserverErrorHandler (error: ErrorLike, request: FastifyRequest, reply: FastifyReply): void {
    const status = statusOf(error, reply)
    if (status < 500) {
      // Delegates to the next (Fastify's default) handler: same body, same logging as without us.
      reply.send(error)
      return
    }
    request.log.error({ req: request, res: reply, err: error }, error?.message)
    if (error?.headers !== undefined && error.headers !== null && typeof error.headers === 'object') {
      reply.headers(error.headers)
    }
    const text = STATUS_CODES[status] ?? 'Error'
    const body: Record<string, unknown> = { statusCode: status, error: text, message: text }
    if (exposeTracebacks) {
      body.message = error?.message ?? text
      body.stack = error?.stack
    }
    reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body))
  }
}
