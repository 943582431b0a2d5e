/**
 * @fastify/session's `idGenerator` option, checked where the id is made: an id outside what the
 * stores accept (1 to 128 characters of A-Z a-z 0-9 _ -; ids become file names and Redis keys)
 * fails the request with an error naming the option, instead of an error from deep inside a store.
 * The id itself is never echoed: a session id is a bearer credential.
 */
import { isValidSessionId, MAX_SESSION_ID_LENGTH } from './stores/types'
import { ID_ACCEPTED } from './options'

export class InvalidSessionIdError extends Error {
  readonly code = 'ERR_SESSION_ID_GENERATOR'
  constructor (id: unknown) {
    const got = typeof id !== 'string'
      ? (id === null ? 'null' : `a ${typeof id}`)
      : id.length === 0 || id.length > MAX_SESSION_ID_LENGTH ? `an id of ${id.length} characters` : 'an id with a character outside that alphabet'
    super(`option idGenerator returned ${got}; accepted: ${ID_ACCEPTED}`)
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
