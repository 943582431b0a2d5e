/**
 * Errors the sessions layer throws towards Fastify.
 *
 * Fastify's default error handler uses `statusCode` and sends `headers`, so a store outage becomes
 * `503 Service Unavailable` + `Retry-After: 1` instead of @fastify/session's generic 500 (research
 * §2.1: any store error other than ENOENT fails the request). The message is deliberately generic:
 * 5xx bodies must never echo internals (host names, URLs, Redis replies); those live in `cause`,
 * which goes to the log only.
 */
export class StoreUnavailableError extends Error {
  readonly statusCode = 503
  readonly code = 'FST_SESSION_STORE_UNAVAILABLE'
  readonly headers: Record<string, string> = { 'retry-after': '1' }

  constructor (cause?: unknown, message = 'Session store unavailable') {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'StoreUnavailableError'
  }
}

/**
 * Boot-time failure: the configured Redis did not become ready within the boot timeout.
 * The message is one line naming REDIS_URL with its password redacted (redactUrl), because it is
 * printed by the launcher / the plugin's boot error; the raw client error stays in `cause`.
 */
export class StoreConnectError extends Error {
  readonly code = 'FST_SESSION_STORE_CONNECT'

  constructor (message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'StoreConnectError'
  }
}

export function isStoreUnavailable (err: unknown): err is StoreUnavailableError {
  return err instanceof StoreUnavailableError
}
