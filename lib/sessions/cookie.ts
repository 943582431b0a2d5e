/**
 * Session cookie attributes.
 *
 * - `httpOnly: true`, `sameSite: 'lax'` explicitly: @fastify/session emits no SameSite attribute
 *   by default (research L11, pitfall 19).
 * - `secure: 'auto'` by default (Secure on https, as DESIGN.md says), `true`/`false` on request.
 *   @fastify/session's own default `true` silently drops the cookie AND the save on plain http
 *   (research L11, complaint #1); plugin.ts warns once when that happens with `true`.
 * - `maxAge` is in MILLISECONDS (research L12: the README's `maxAge: 3600` lasts ≈ 4 s).
 */
import type { CookieSecure } from './config'

export interface SessionCookieOptions {
  httpOnly: true
  sameSite: 'lax'
  secure: boolean | 'auto'
  path: string
  maxAge: number
}

export function sessionCookieOptions (cookieSecure: CookieSecure, ttlMs: number): SessionCookieOptions {
  return {
    httpOnly: true,
    sameSite: 'lax',
    secure: cookieSecure === 'auto' ? 'auto' : cookieSecure === 'true',
    path: '/',
    maxAge: ttlMs
  }
}

/**
 * Attributes of the clearing Set-Cookie sent on logout (reply.clearCookie adds Max-Age=0 and a past
 * Expires): same name, path and security attributes as the cookie it replaces, so the browser
 * overwrites that one (a Secure cookie is only replaced by a Secure one).
 */
export function clearingCookieOptions (cookie: SessionCookieOptions): { path: string, httpOnly: true, sameSite: 'lax', secure: boolean | 'auto' } {
  return { path: cookie.path, httpOnly: true, sameSite: 'lax', secure: cookie.secure }
}
