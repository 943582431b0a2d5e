/**
 * Session cookie attributes.
 *
 * - `httpOnly: true`, `sameSite: 'lax'` explicitly by default: @fastify/session emits no SameSite
 *   attribute by default (research L11, pitfall 19). Both, and path/domain/partitioned/priority,
 *   can be set with @fastify/session's `cookie` option (lib/sessions/options.ts checks them).
 * - `secure: 'auto'` by default (Secure on https, as DESIGN.md says), `true`/`false` on request.
 *   @fastify/session's own default `true` silently drops the cookie AND the save on plain http
 *   (research L11, complaint #1); plugin.ts warns once when that happens with `true`.
 * - `maxAge` is in MILLISECONDS (research L12: the README's `maxAge: 3600` lasts ≈ 4 s). None
 *   (`cookie.maxAge: null`): a browser-session cookie, no Expires; the store still keeps the
 *   session ttl after its last use (the adapter's default lifetime).
 */
import type { CookieSecure } from './config'
import type { CookieAttributes, Priority, SameSite } from './options'

export interface SessionCookieOptions {
  httpOnly: boolean
  sameSite: SameSite
  secure: boolean | 'auto'
  path: string
  /** Absent: a browser-session cookie. */
  maxAge?: number
  domain?: string
  partitioned?: boolean
  priority?: Priority
}

const DEFAULT_ATTRIBUTES: CookieAttributes = { path: '/', sameSite: 'lax', httpOnly: true }

/** `maxAgeMs` null: a browser-session cookie. */
export function sessionCookieOptions (cookieSecure: CookieSecure, maxAgeMs: number | null, attributes: CookieAttributes = DEFAULT_ATTRIBUTES): SessionCookieOptions {
  const options: SessionCookieOptions = { ...attributes, secure: cookieSecure === 'auto' ? 'auto' : cookieSecure === 'true' }
  if (maxAgeMs !== null) options.maxAge = maxAgeMs
  return options
}

/**
 * Attributes of the clearing Set-Cookie sent on logout (reply.clearCookie adds Max-Age=0 and a past
 * Expires): same name, path, domain, partitioning and security attributes as the cookie it
 * replaces, so the browser overwrites that one (a Secure cookie is only replaced by a Secure one, a
 * Domain cookie only by one with the same Domain, a Partitioned one only in its partition).
 */
export function clearingCookieOptions (cookie: SessionCookieOptions): Omit<SessionCookieOptions, 'maxAge' | 'priority'> {
  const { maxAge: _maxAge, priority: _priority, ...clearing } = cookie
  return clearing
}

/**
 * `secure: 'auto'`, resolved per request by us rather than by @fastify/session: its Cookie turns the
 * SameSite attribute into Lax on every plain-http request (lib/cookie.js), whatever was configured
 * or set per route with request.session.options(), so a configured `strict` would silently become
 * `lax`. We hand @fastify/session `secure: null` instead (its Cookie keeps null, its "Secure cookie
 * on http" check sees no `true`) and decide here, before its onSend writes the cookie. Only `none`
 * becomes `lax` on http, as there: a browser drops a SameSite=None cookie that is not Secure.
 */
export function resolveAutoSecure (cookie: { secure?: unknown, sameSite?: unknown }, https: boolean): void {
  if (cookie.secure !== null) return // not 'auto', or set per route
  cookie.secure = https
  if (!https && typeof cookie.sameSite === 'string' && cookie.sameSite.toLowerCase() === 'none') cookie.sameSite = 'lax'
}

/**
 * Appends `Priority=…` to the session cookie lines already written: @fastify/session's Cookie has no
 * priority field, so its Set-Cookie would drop the option. Clearing lines (empty value) are left.
 */
export function addPriority (lines: string[], name: string, priority: Priority): string[] {
  const attribute = `; Priority=${priority[0].toUpperCase()}${priority.slice(1)}`
  return lines.map((l) => l.startsWith(`${name}=`) && !l.startsWith(`${name}=;`) && !/;\s*Priority=/i.test(l) ? l + attribute : l)
}
