/**
 * Per-route cookie options: `request.session.options({ … })`, @fastify/session's way to change one
 * session's cookie in a route ("remember me", a stricter SameSite on one page…).
 *
 * @fastify/session merges the object into the session's cookie options and builds a new Cookie
 * from them, which keeps only the fields it knows (path, domain, sameSite, secure, httpOnly,
 * partitioned, maxAge, expires): `priority`, a typo or a refused field would vanish without a
 * word. So the plugin reads the merged options back once a route has called options() and:
 * - honours `priority` (the Cookie has no such field; the plugin adds the attribute),
 * - refuses any other field with an error naming it (the request fails: a programming error),
 * - turns `expires` (and a negative `maxAge`) into the session's lifetime (routeLifetime below).
 */
import { OPTION_RULES, type Priority } from './options'

/** The cookie fields a route may set (the options table's `perRoute` rules). */
const ROUTE_FIELDS = OPTION_RULES.filter((r) => r.perRoute === true).map((r) => r.name.slice('cookie.'.length))

/** A route's request.session.options({…}) that cannot be honoured; the request fails with it. */
export class RouteCookieOptionError extends Error {
  readonly code = 'ERR_SESSION_ROUTE_COOKIE_OPTION'
  constructor (message: string) {
    super(message)
    this.name = 'RouteCookieOptionError'
  }
}

/**
 * The key under which @fastify/session's Session keeps its merged cookie options (a module-private
 * Symbol('cookieOpts')), found on the first session that needs it.
 */
let cookieOptsKey: symbol | undefined

function cookieOptionsOf (session: object): Record<string, unknown> {
  cookieOptsKey ??= Object.getOwnPropertySymbols(session).find((s) => s.description === 'cookieOpts')
  const options = cookieOptsKey === undefined ? undefined : (session as Record<symbol, unknown>)[cookieOptsKey]
  if (typeof options !== 'object' || options === null) {
    // Only a different @fastify/session than the one we depend on (^11) gets here.
    throw new RouteCookieOptionError('request.session.options({…}) cannot be checked: this @fastify/session keeps its cookie options elsewhere; accepted: @fastify/session 11')
  }
  return options as Record<string, unknown>
}

/**
 * Checks the options a route gave request.session.options() (merged with the registration's) and
 * returns the Priority to add to the cookie, if any. Throws RouteCookieOptionError.
 */
export function checkRouteCookieOptions (session: object): Priority | undefined {
  const options = cookieOptionsOf(session)
  for (const name of Object.keys(options)) {
    if (options[name] === undefined || ROUTE_FIELDS.includes(name)) continue
    const rule = OPTION_RULES.find((r) => r.name === `cookie.${name}`)
    throw new RouteCookieOptionError(rule !== undefined
      ? `request.session.options({ ${name} }) is refused: ${rule.note}`
      : `request.session.options({ ${name} }): ${name} is not a cookie option; accepted: ${ROUTE_FIELDS.join(', ')}`)
  }
  const priority = options.priority
  if (priority === undefined || priority === null) return undefined
  const p = typeof priority === 'string' ? priority.toLowerCase() : priority
  if (p !== 'low' && p !== 'medium' && p !== 'high') {
    throw new RouteCookieOptionError(`request.session.options({ priority: ${JSON.stringify(priority) ?? String(priority)} }) is not valid; accepted: 'low', 'medium' or 'high'`)
  }
  return p
}

/** The parts of @fastify/session's Cookie that carry a lifetime. */
export interface LifetimeCookie {
  originalMaxAge: number | null
  originalExpires?: Date
  maxAge: number | null
}

/**
 * Applies a route's lifetime to the session cookie before the save: `'end'` when the route asked
 * for a lifetime already over (an `expires` not after now, a negative maxAge) — the plugin ends the
 * session as a logout would; otherwise the lifetime is left in `maxAge`, which the store's TTL, the
 * cookie and sliding all follow.
 *
 * `expires` becomes `maxAge = expires - now`, however short: @fastify/session would keep the
 * configured maxAge (it always exists here), and the store's TTL is in milliseconds, so a session
 * told to end in 300 ms ends then. (The cookie's Expires attribute has one-second resolution: the
 * browser may drop the cookie up to a second earlier, never later.)
 */
export function routeLifetime (cookie: LifetimeCookie, now: number): 'end' | undefined {
  if (cookie.originalExpires instanceof Date) {
    const ms = cookie.originalExpires.getTime() - now
    cookie.originalExpires = undefined
    if (Number.isNaN(ms)) throw new RouteCookieOptionError('request.session.options({ expires }) is not a valid date; accepted: a Date, or what new Date() reads as one')
    if (ms <= 0) return 'end'
    cookie.maxAge = ms
    return undefined
  }
  return typeof cookie.originalMaxAge === 'number' && cookie.originalMaxAge < 0 ? 'end' : undefined
}
