/**
 * @fastify/session's `idGenerator` option, checked: an id it returns outside what the stores
 * accept (1 to 128 characters of A-Z a-z 0-9 _ -; ids become file names and Redis keys) fails the
 * request with an error naming the option, instead of a session every store silently refuses to
 * save (connect-redis 8's own tests use 3-character ids).
 */
import { isValidSessionId } from './stores/types'
import { ID_ACCEPTED } from './options'

export class InvalidSessionIdError extends Error {
  readonly code = 'ERR_SESSION_ID_GENERATOR'
  constructor (id: unknown) {
    const shown = typeof id === 'string' ? `"${id.length > 40 ? id.slice(0, 40) + '…' : id}" (${id.length} characters)` : String(id)
    super(`option idGenerator returned ${shown}; accepted: ${ID_ACCEPTED}`)
    this.name = 'InvalidSessionIdError'
  }
}

export function checkedIdGenerator (generate: (request?: any) => string): (request?: any) => string {
  return (request) => {
    const id = generate(request)
    if (!isValidSessionId(id)) throw new InvalidSessionIdError(id)
    return id
  }
}
