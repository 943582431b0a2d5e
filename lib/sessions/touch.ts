/**
 * Sliding expiry without rewriting session data.
 *
 * @fastify/session never calls a store's `touch` (research 2.1); its only way to slide is
 * `rolling: true`, which re-saves the whole session on every request: 20+ writes per page for
 * static assets (SerayaEryn#126) and the resurrection race of research L7 (a slow read-only request
 * saves its stale copy after a logout). We run with `rolling: false` and refresh instead with a
 * cheap `store.touch` (which never creates a record, so it cannot resurrect a destroyed session),
 * at most once per interval per session, and re-issue the cookie so the browser's copy slides too.
 */

/** Refresh at most this often: a tenth of the lifetime, capped at one minute. */
export function touchInterval (ttlMs: number): number {
  return Math.max(1, Math.min(Math.floor(ttlMs / 10), 60_000))
}

export interface TouchState {
  /** The session's lifetime (its cookie's originalMaxAge). */
  maxAgeMs: number
  /** When the store says the session expires (handed to the plugin by the adapter's onLoaded). */
  expiresAtMs: number
  now: number
}

/**
 * Due when at least one interval has passed since the last refresh: the elapsed part of the
 * lifetime is `maxAge - (expiresAt - now)`.
 */
export function touchDue ({ maxAgeMs, expiresAtMs, now }: TouchState): boolean {
  if (!(maxAgeMs > 0) || !Number.isFinite(expiresAtMs)) return false
  return maxAgeMs - (expiresAtMs - now) >= touchInterval(maxAgeMs)
}
