/**
 * Cookie-signing secrets.
 *
 * - SESSION_SECRET is a comma list; in code a string is one secret, an array a list, a Buffer its
 *   bytes (config/secret-list.ts). The knob parser already checks that EVERY entry has ≥ 32
 *   characters or bytes (@fastify/session only checks a plain string: `['short']` is accepted —
 *   research L9, pitfall 18). The first entry signs, all verify: rotate by deploying "new,old" and
 *   restarting (@fastify/cookie's Signer captures the signing key at construction, so mutating the
 *   array at run time does not rotate — research 2.6).
 * - Production without a secret fails the boot: a random per-process secret would log every user
 *   out on each restart and, in cluster mode, on every request that lands on another worker.
 * - Elsewhere: the launcher's primary generates one secret for all its workers and hands it down in
 *   PRODSERVER_INTERNAL_SESSION_SECRET (kept for the primary's lifetime, so it survives a reload);
 *   without the launcher, a random secret and one warning.
 */
import crypto from 'node:crypto'
import { KnobError } from '../config/values'
import type { Secret } from '../config/secret-list'

export const INTERNAL_SECRET_ENV = 'PRODSERVER_INTERNAL_SESSION_SECRET'

export interface SecretChoice {
  /** Strings and Buffers (a Buffer given in code is used as its bytes: config/secret-list.ts). */
  secrets: Secret[]
  source: 'configured' | 'launcher' | 'random'
  /** A warning to log once, if any. */
  warning?: string
}

export function chooseSecrets (configured: Secret[] | undefined, env: NodeJS.ProcessEnv): SecretChoice {
  if (configured !== undefined && configured.length > 0) return { secrets: configured, source: 'configured' }
  if (env.NODE_ENV === 'production') {
    throw new KnobError('SESSION_SECRET is required when NODE_ENV=production; accepted: one or more comma-separated secrets of at least 32 characters each (e.g. `openssl rand -base64 48`)')
  }
  const internal = env[INTERNAL_SECRET_ENV]
  if (internal !== undefined && internal !== '') {
    const list = internal.split(',').map((s) => s.trim()).filter(Boolean)
    if (list.length > 0 && list.every((s) => s.length >= 32)) return { secrets: list, source: 'launcher' }
  }
  return {
    secrets: [generateSecret()],
    source: 'random',
    warning: 'sessions: SESSION_SECRET is not set; using a random secret: sessions will not survive a restart and are not shared between processes (set SESSION_SECRET, required when NODE_ENV=production)'
  }
}

/** 48 random bytes, base64url: 64 characters. */
export function generateSecret (): string {
  return crypto.randomBytes(48).toString('base64url')
}
