/**
 * The sessions plugin: @fastify/session with a store picked from the environment, and the hooks
 * that fill @fastify/session's gaps. Everything is read, defaulted and validated once here at
 * registration; the per-request hooks only compare values.
 *
 *   await app.register(sessions)               // everything from the environment
 *   request.session.user = …                   // write → saved; read-only → never rewritten
 *   await request.session.regenerate()         // on login: new id, old one destroyed (CVE-2023-29019)
 *   await request.session.destroy()            // on logout: store entry gone AND cookie cleared
 *
 * Session data is typed by merging into Fastify's `Session` interface (see types/index.d.ts):
 *   declare module 'fastify' { interface Session { user?: { id: string } } }
 */
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import fastifySession, { type FastifySessionObject } from '@fastify/session'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { readSessionConfig, type SessionsOptions } from './config'
import { chooseSecrets } from './secrets'
import { RememberingSigner } from './signer'
import { openStore } from './open-store'
import { toCallbackStore, touchBounded, type AdapterOptions } from './adapter'
import { sessionCookieOptions, clearingCookieOptions, resolveAutoSecure, addPriority } from './cookie'
import { checkRouteCookieOptions, routeLifetime } from './route-cookie'
import { checkedIdGenerator } from './id-generator'
import { touchDue } from './touch'
import { FailedOps, unavailableSession } from './unavailable'
import { LoadedSessions } from './patch'
import type { StoreCheck } from './stores/types'

export type { SessionsOptions } from './config'
export type { FastifySessionObject } from '@fastify/session'

export interface SessionBackend {
  /** `custom`: a @fastify/session / express-session store object passed as `store`. */
  kind: 'redis' | 'file' | 'memory' | 'custom'
  reason: string
  check (): Promise<StoreCheck>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionBackend: SessionBackend
  }
}

type LoadedSession = FastifySessionObject & {
  cookie: { originalMaxAge: number | null, maxAge: number | null, originalExpires?: Date, sameSite?: unknown, secure?: unknown, toJSON (): Record<string, unknown> }
}
type Priority = NonNullable<ReturnType<typeof checkRouteCookieOptions>>

const sessionsPlugin: FastifyPluginAsync<SessionsOptions> = async (fastify, options) => {
  const env = process.env
  const config = readSessionConfig(options, env)
  const compat = config.fastifySession
  // A signer object passed as `secret` signs by itself; otherwise secrets (required in production).
  const secretChoice = compat.signer === undefined ? chooseSecrets(config.secrets, env) : undefined
  for (const w of config.warnings) fastify.log.warn(`sessions: ${w}`)
  if (secretChoice?.warning !== undefined) fastify.log.warn(secretChoice.warning)
  for (const w of compat.warnings) fastify.log.warn(w)

  const opened = await openStore(config, fastify.log)
  const store = opened.store
  if (opened.owned) fastify.addHook('onClose', async () => { await store.close() })
  fastify.log.info({ sessionStore: opened.kind }, `sessions: ${opened.kind} store (${opened.reason})`)
  fastify.decorate('sessionBackend', {
    kind: opened.kind,
    reason: opened.reason,
    check: async () => await store.check()
  } satisfies SessionBackend)

  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)

  // One signer shared with @fastify/session: the first secret signs, all verify. We need it to
  // recognise a cookie signed with an older secret (below).
  const signer = compat.signer ?? new RememberingSigner(secretChoice?.secrets ?? [], compat.algorithm)
  const cookieName = config.cookieName
  const cookiePrefix = compat.cookiePrefix
  // cookie.maxAge: null → browser-session cookies; the store still keeps a session ttl after its last use.
  const cookieMaxAgeMs = compat.browserSessionCookie ? null : config.ttlMs
  const cookie = sessionCookieOptions(config.cookieSecure, cookieMaxAgeMs, compat.cookie)
  const clearing = clearingCookieOptions(cookie)
  /** The signed id the request's session cookie carries (without cookiePrefix), if any. */
  const sentId = cookiePrefix === ''
    ? (request: FastifyRequest): string | undefined => request.cookies[cookieName]
    : (request: FastifyRequest): string | undefined => {
        const value = request.cookies[cookieName]
        return value?.startsWith(cookiePrefix) === true ? value.slice(cookiePrefix.length) : undefined
      }
  // A session that cannot be loaded (store down) does not fail the request: routes that never use
  // the session keep working; the first use of request.session answers 503 (unavailable.ts).
  const failedLoads = new FailedOps()
  // A logout the store could not carry out (Redis OOM or a read-only ACL user, a read-only
  // directory…): the session is still valid, so the response must not clear the cookie either —
  // the client gets the 503 and keeps a cookie to retry the logout with (issue 10).
  const failedDestroys = new FailedOps<Error>()
  // The store's expiry of the session @fastify/session has just loaded: its onRequest hook builds
  // the session in the store's callback and our onRequest hook runs next, synchronously, and picks
  // it up (checked against the session id: anything else is ignored, it only costs a touch).
  let lastLoaded: { id: string, expiresAt: number, json: string } | null = null
  // Saves of loaded sessions are patches of what the request changed (patch.ts), unless opted out.
  const loaded = config.writes === 'merge' ? new LoadedSessions() : undefined
  const adapterOptions: AdapterOptions = {
    ttlMs: config.ttlMs,
    cookieMaxAgeMs,
    timeoutMs: config.timeoutMs,
    maxSessionBytes: config.maxSessionBytes,
    log: fastify.log,
    onLoadFailure: (id, error) => failedLoads.record(id, error),
    onDestroyFailure: (id, error) => failedDestroys.record(id, error),
    onLoaded: (id, expiresAt, json) => { lastLoaded = { id, expiresAt, json } },
    loaded
  }

  // Requests whose session was set up by @fastify/session (an earlier hook may have answered first,
  // leaving request.session at its decorator default null, which must not read as a logout), with
  // the store's expiry of the session loaded for them (NaN: none loaded).
  const prepared = new WeakMap<FastifyRequest, number>()
  // The cookie each request's session started with: a route that calls request.session.options({…})
  // replaces it (Session#options builds a new Cookie), and so does regenerate().
  const cookieAtStart = new WeakMap<FastifyRequest, object>()
  // The Priority a route gave with request.session.options({ priority }).
  const routePriority = new WeakMap<FastifyRequest, Priority>()
  // Requests whose session could not be loaded: request.session throws the 503 when used.
  const unavailable = new WeakSet<FastifyRequest>()

  // Runs before @fastify/session's onSend (registered before it), so its Set-Cookie and its save
  // see the cookie as configured, and as the route changed it (route-cookie.ts).
  const autoSecure = cookie.secure === 'auto'
  // Requests whose route gave cookie options we refuse: failed once (the error response passes
  // through these hooks again).
  const refusedRoute = new WeakSet<FastifyRequest>()
  fastify.addHook('onSend', (request, _reply, payload, done) => {
    if (unavailable.has(request) || refusedRoute.has(request)) { done(null, payload); return }
    const session = request.session as LoadedSession | null
    const c = session?.cookie
    if (c === undefined || c === null) { done(null, payload); return }
    if (c !== cookieAtStart.get(request)) {
      try {
        const priority = checkRouteCookieOptions(session as object)
        if (priority !== undefined) routePriority.set(request, priority)
        if (routeLifetime(c, Date.now()) === 'end') {
          // The route set a lifetime already over: the session ends now, as a logout (tombstone,
          // cookie cleared by the hook after @fastify/session's).
          (session as LoadedSession).destroy((err?: Error) => { if (err !== undefined && err !== null) done(err); else done(null, payload) })
          return
        }
      } catch (err) {
        refusedRoute.add(request)
        done(err as Error)
        return
      }
    }
    if (autoSecure) resolveAutoSecure(c, request.protocol === 'https')
    done(null, payload)
  })

  await fastify.register(fastifySession, {
    secret: signer,
    cookieName,
    cookiePrefix,
    // 'auto' is resolved by the hook above (resolveAutoSecure says why); null = "not decided yet".
    cookie: { ...cookie, secure: autoSecure ? null as unknown as boolean : cookie.secure },
    ...(compat.idGenerator !== undefined ? { idGenerator: checkedIdGenerator(compat.idGenerator) } : {}),
    store: toCallbackStore(store, adapterOptions) as any,
    // Default false: requests without a session cookie never touch the store unless they write
    // (pitfall 3). true is honoured with a warning (options.ts).
    saveUninitialized: compat.saveUninitialized,
    // Default false: read-only requests never rewrite session data, and a slow read-only request
    // cannot save its stale copy over a logout (research L7). Sliding expiry is done by touch
    // below instead. true is honoured with a warning (options.ts).
    rolling: compat.rolling
  })

  fastify.addHook('onRequest', (request, _reply, done) => {
    let expiresAt = Number.NaN
    if (lastLoaded !== null) {
      const session = request.session as LoadedSession | null
      if (session?.sessionId === lastLoaded.id) {
        expiresAt = lastLoaded.expiresAt
        loaded?.remember(session, lastLoaded.json)
      }
      lastLoaded = null
    }
    prepared.set(request, expiresAt)
    const cookieNow = (request.session as LoadedSession | null)?.cookie
    if (typeof cookieNow === 'object' && cookieNow !== null) cookieAtStart.set(request, cookieNow)
    if (failedLoads.size > 0) {
      const sent = sentId(request)
      const unsigned = sent === undefined ? undefined : signer.unsign(sent)
      const error = unsigned?.valid === true && unsigned.value !== null ? failedLoads.take(unsigned.value) : undefined
      if (error !== undefined) {
        request.session = unavailableSession(error) as FastifySessionObject
        unavailable.add(request)
      }
    }
    done()
  })

  let warnedInsecure = false

  // Requests whose session cookie must survive the response: the store failed to destroy its session.
  const keepCookie = new WeakSet<FastifyRequest>()

  // Runs after @fastify/session's onSend (registered after it): it has saved what changed.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (unavailable.has(request)) { done(null, payload); return } // nothing was loaded: nothing to save or slide
    if (refusedRoute.has(request)) { done(null, payload); return } // failed: its cookie options are not sent
    const session = request.session as LoadedSession | null
    const sent = sentId(request)

    if (sent !== undefined && (keepCookie.has(request) || (failedDestroys.size > 0 && destroyFailedFor(sent)))) {
      // Its session is still in the store: no clearing Set-Cookie (ours below, or @fastify/session's
      // after a failed regenerate()); the error already answers 503 + Retry-After.
      keepCookie.add(request)
      dropClearingCookie(reply, cookieName)
      done(null, payload)
      return
    }

    if (session === null) {
      // destroy() nulls request.session and @fastify/session then leaves the browser's cookie in
      // place (research 2.4, pitfall 17, fastify/session#106): clear it in this same response.
      if (sent !== undefined && prepared.has(request)) reply.clearCookie(cookieName, clearing)
      done(null, payload)
      return
    }
    // Outside the cookie path @fastify/session leaves a plain object; after a store error, too.
    if (typeof session?.isModified !== 'function') { done(null, payload); return }

    if (loaded?.foundGone(session) === true) {
      // Its save found the session gone (a logout or regenerate() meanwhile, or expiry): no cookie
      // for a dead id, which would replace the one a parallel login has just set.
      dropSetCookie(reply, cookieName)
      done(null, payload)
      return
    }

    if (session.cookie.secure === true && request.protocol !== 'https') {
      // @fastify/session saves nothing and sets no cookie: logins silently "do not stick"
      // (research L11, the most reported @fastify/session complaint).
      if (!warnedInsecure && session.isModified()) {
        warnedInsecure = true
        request.log.warn('sessions: the session cookie is Secure (SESSION_COOKIE_SECURE=true) but this request is plain http, so the session was not saved and no cookie was set; behind a TLS proxy set PRODSERVER_TRUSTED_PROXY (or PRODSERVER_URL_SCHEME=https), or use SESSION_COOKIE_SECURE=auto')
      }
      done(null, payload)
      return
    }

    if (sent === undefined || session.isSaved() || !carriedThisSession(sent, session)) { done(null, payload); return }

    if (session.cookie !== cookieAtStart.get(request)) {
      // The route changed the cookie options of the session it loaded (request.session.options)
      // without changing its data: @fastify/session (rolling false) would neither save nor send
      // them. Save (the lifetime is stored with the session) and send the cookie.
      session.save().then(() => { reissue(reply, session); done(null, payload) }, (err: unknown) => done(err as Error))
      return
    }

    // The session came from the store with this request's cookie and was not written.
    const maxAgeMs = session.cookie.originalMaxAge ?? config.ttlMs
    const expiresAtMs = prepared.get(request) ?? Number.NaN
    if (touchDue({ maxAgeMs, expiresAtMs, now: Date.now() })) {
      touchBounded(store, session.sessionId, maxAgeMs, adapterOptions).then((ok) => {
        // Touched: the browser's copy slides too (a browser-session cookie has no expiry to slide).
        // Not touched (logged): still re-sign if needed.
        if ((ok && session.cookie.originalMaxAge !== null) || sent !== session.encryptedSessionId) reissue(reply, session)
        done(null, payload)
      }, (err) => done(err))
      return
    }
    // Signed with an older secret ("new,old" rotation): @fastify/session re-signed the id with the
    // new secret and, with saveUninitialized false, CLEARED the cookie (research 2.6, pitfall 18).
    // Re-issue it with the new signature instead; the data is unchanged, so no store write.
    if (sent !== session.encryptedSessionId) reissue(reply, session)
    done(null, payload)
  })

  // After every hook that may write the session cookie (addPriority says why): the route's
  // priority, else the configured one.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const priority = routePriority.get(request) ?? cookie.priority
    const current = priority === undefined ? undefined : reply.getHeader('set-cookie')
    if (current !== undefined) {
      const lines = addPriority(Array.isArray(current) ? current : [String(current)], cookieName, priority as Priority)
      reply.removeHeader('set-cookie') // reply.header() appends Set-Cookie lines
      reply.header('set-cookie', lines)
    }
    done(null, payload)
  })

  /** Did a destroy of the session this signed cookie carries fail (consumed: once per failure)? */
  function destroyFailedFor (sent: string): boolean {
    const unsigned = signer.unsign(sent)
    return unsigned.valid && unsigned.value !== null && failedDestroys.take(unsigned.value) !== undefined
  }

  /** Did the request carry the id of the session it ended with (loaded, not regenerated/new)? */
  function carriedThisSession (sent: string, session: LoadedSession): boolean {
    if (sent === session.encryptedSessionId) return true
    const unsigned = signer.unsign(sent)
    return unsigned.valid && unsigned.value === session.sessionId
  }

  function reissue (reply: FastifyReply, session: LoadedSession): void {
    // @fastify/session may already have written a clearing Set-Cookie for this name (its onSend
    // runs after @fastify/cookie's, which then writes the header at once): replace, not append.
    dropSetCookie(reply, cookieName)
    reply.setCookie(cookieName, cookiePrefix + session.encryptedSessionId, session.cookie.toJSON() as any)
  }
}

/**
 * Removes the Set-Cookie header lines already written for `name`; with `clearingOnly`, only those
 * that delete it (reply.clearCookie writes an empty value).
 */
function dropSetCookie (reply: FastifyReply, name: string, clearingOnly = false): void {
  const current = reply.getHeader('set-cookie')
  if (current === undefined) return
  const lines = (Array.isArray(current) ? current : [String(current)])
    .filter((l) => !l.startsWith(`${name}=`) || (clearingOnly && !l.startsWith(`${name}=;`)))
  reply.removeHeader('set-cookie')
  if (lines.length > 0) reply.header('set-cookie', lines)
}

function dropClearingCookie (reply: FastifyReply, name: string): void {
  dropSetCookie(reply, name, true)
}

export default fp(sessionsPlugin, { name: 'fastify-prodserver-sessions', fastify: '5.x' })
