/**
 * The sessions plugin's options that are not knobs: @fastify/session 11's own options — so the
 * object an app already passes to `app.register(fastifySession, {…})` can be handed to us as it is —
 * and the code-only ones. ONE table (OPTION_RULES): registration checks every option against it,
 * its errors and warnings quote it, and the README's options table is generated from it plus the
 * knobs' `pluginOption` (scripts/session-options-table.js; test/readme.test.ts checks for drift).
 *
 * Nothing is ignored: an option is honoured on the wire, honoured with a one-time warning naming
 * the guarantee it costs, or refused at registration with one line naming it and why. An unknown
 * name is refused too (a typo in a security option must not pass silently).
 */
import crypto from 'node:crypto'
import { knobsInGroup } from '../config/knobs'
import { KnobError } from '../config/values'
import { closest } from '../config/suggest'
import { MAX_SESSION_ID_LENGTH } from './stores/types'

export type Verdict = 'honoured' | 'warns' | 'refused'

export interface OptionRule {
  /** Option name; `cookie.x` is the field `x` of the `cookie` option. */
  readonly name: string
  readonly verdict: Verdict
  readonly default: string
  readonly accepted: string
  /** honoured: what it does; warns: when it warns and the guarantee lost; refused: why. */
  readonly note: string
  /**
   * A `cookie.x` field that request.session.options({ x }) honours for one session (route-cookie.ts
   * checks a route's options against these; any other field is refused there).
   */
  readonly perRoute?: true
}

/** Where a session id may come from a custom generator: what the stores accept (types.ts). */
export const ID_ACCEPTED = `1 to ${MAX_SESSION_ID_LENGTH} characters of A-Z a-z 0-9 _ -`

export const OPTION_RULES: readonly OptionRule[] = [
  {
    name: 'store',
    verdict: 'honoured',
    default: 'auto (SESSION_STORE)',
    accepted: 'auto, redis, file, memory; or a store object you keep: one of ours, or any @fastify/session / express-session store (callback get/set/destroy, optional touch: connect-redis, connect-pg-simple, connect-mongo…)',
    note: 'A store object gets every call bounded by redisTimeout (503 + Retry-After on failure), sliding by its touch (or a re-save without one) and a JSON round trip; its logout tombstones are per process (see "Your own store").'
  },
  {
    name: 'secret',
    verdict: 'honoured',
    default: 'SESSION_SECRET',
    accepted: 'a string (one secret, used exactly as given), a Buffer (its bytes) or an array of them, each at least 32 characters or bytes (the first signs, all verify); or a signer object `{ sign, unsign }` (@fastify/cookie custom signer)',
    note: 'A list entry shorter than 32 characters is refused (@fastify/session only checks a plain string). In code a string is never split: one that reads as a comma list of secrets is refused as ambiguous (comma lists are the SESSION_SECRET convention); a Buffer is never turned into text.'
  },
  {
    name: 'algorithm',
    verdict: 'honoured',
    default: 'sha256',
    accepted: 'an HMAC hash name this Node supports (`crypto.getHashes()`); not with a signer object',
    note: 'HMAC of the cookie signature, as in @fastify/session.'
  },
  {
    name: 'cookiePrefix',
    verdict: 'honoured',
    default: 'none',
    accepted: 'a string (`s:` reads and writes express-session cookies)',
    note: 'Prefix of the cookie value; a cookie without it is not a session cookie.'
  },
  {
    name: 'cookie.path',
    perRoute: true,
    verdict: 'honoured',
    default: '/',
    accepted: 'a path starting with /',
    note: 'Path attribute; requests outside it have no session (as @fastify/session).'
  },
  {
    name: 'cookie.domain',
    perRoute: true,
    verdict: 'honoured',
    default: 'none (host-only)',
    accepted: 'a domain name',
    note: 'Domain attribute (share the session with subdomains); the logout cookie carries it too.'
  },
  {
    name: 'cookie.sameSite',
    perRoute: true,
    verdict: 'honoured',
    default: 'lax',
    accepted: "'lax', 'strict', 'none' (needs secure true or 'auto'), true (= strict) or false (no attribute)",
    note: "SameSite attribute. Unlike @fastify/session, 'strict' stays strict on plain http with secure 'auto'."
  },
  {
    name: 'cookie.httpOnly',
    perRoute: true,
    verdict: 'warns',
    default: 'true',
    accepted: 'true or false',
    note: 'false warns once: scripts on your pages can read the session cookie, so one XSS steals sessions (guarantee lost: cookies are HttpOnly).'
  },
  {
    name: 'cookie.secure',
    perRoute: true,
    verdict: 'honoured',
    default: "'auto' (SESSION_COOKIE_SECURE)",
    accepted: "true, false or 'auto' (Secure on https)",
    note: 'Same as cookieSecure; giving both with different values is refused.'
  },
  {
    name: 'cookie.maxAge',
    perRoute: true,
    verdict: 'honoured',
    default: 'ttl',
    accepted: 'milliseconds, at least 1000 (the cookie Expires attribute has one-second resolution); or null: a browser-session cookie',
    note: 'Lifetime of the cookie and of the stored session, sliding (= ttl, in ms); giving both with different values is refused. null: the cookie has no Expires (the browser drops it when it closes) while the stored session still ends ttl after its last use. Per route, request.session.options({ maxAge }) sets one session\'s lifetime (e.g. "remember me"; null: a browser-session cookie), kept with the session.'
  },
  {
    name: 'cookie.expires',
    perRoute: true,
    verdict: 'refused',
    default: '—',
    accepted: 'nothing: use cookie.maxAge or ttl (cookie.maxAge null for a browser-session cookie)',
    note: 'A date is one fixed date for every session, computed once at registration: sessions made after it passes would get no expiry at all; null (a browser-session cookie) is spelled cookie.maxAge: null here. Per route, request.session.options({ expires }) is honoured: the session ends then (cookie Expires and stored session alike, to the millisecond in the store); a date already past ends it in that response, as a logout.'
  },
  {
    name: 'cookie.partitioned',
    perRoute: true,
    verdict: 'honoured',
    default: 'false',
    accepted: "true or false (true needs secure true or 'auto')",
    note: 'Partitioned attribute (CHIPS).'
  },
  {
    name: 'cookie.priority',
    perRoute: true,
    verdict: 'honoured',
    default: 'none',
    accepted: "'low', 'medium' or 'high'",
    note: "Priority attribute (added to the Set-Cookie line: @fastify/session's cookie drops it); per route too, with request.session.options({ priority }), where another value fails the request with an error naming the option."
  },
  {
    name: 'cookie.encode',
    verdict: 'refused',
    default: '—',
    accepted: 'nothing',
    note: 'It changes how the id is written but not how @fastify/cookie decodes it on the next request, so sessions would be lost; the signed id needs no encoding.'
  },
  {
    name: 'cookie.signed',
    verdict: 'refused',
    default: '—',
    accepted: 'nothing',
    note: 'The session id is already signed with `secret`; @fastify/cookie would sign it a second time with its own secret (@fastify/session excludes it too).'
  },
  {
    name: 'idGenerator',
    verdict: 'honoured',
    default: '24 random bytes, base64url (32 characters)',
    accepted: `a function (request) => string returning ${ID_ACCEPTED}`,
    note: 'Makes new session ids; an id outside that alphabet fails the request with an error naming idGenerator (ids reach file names and keys).'
  },
  {
    name: 'saveUninitialized',
    verdict: 'warns',
    default: 'false',
    accepted: 'true or false',
    note: 'true warns once: every request without a session cookie then writes a session and gets a cookie (guarantee lost: requests without a session cookie never touch the store).'
  },
  {
    name: 'rolling',
    verdict: 'warns',
    default: 'false (expiry slides by touch)',
    accepted: 'true or false',
    note: 'true warns once: every response re-saves the whole session and sets the cookie (guarantee lost: read-only requests never rewrite session data); expiry slides either way.'
  },
  {
    name: 'redisClient',
    verdict: 'honoured',
    default: '—',
    accepted: 'an ioredis (5 or 6) Redis or Cluster, or a node-redis (5) client, cluster or sentinel, already connected',
    note: 'Used as configured, never closed (e.g. @fastify/redis\'s); every operation is still bounded by redisTimeout.'
  },
  {
    name: 'bootTimeout',
    verdict: 'honoured',
    default: '5s',
    accepted: 'a duration such as 500ms or 5s (a bare number means milliseconds)',
    note: 'How long registration waits for Redis to be ready.'
  }
]

/**
 * Options Fastify itself reads from any plugin's registration options (`register(plugin, opts)`);
 * they are Fastify's, not ours to judge.
 */
const FASTIFY_REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

const RULES = new Map(OPTION_RULES.map((r) => [r.name, r]))

export type SameSite = 'lax' | 'strict' | 'none' | boolean
export type Priority = 'low' | 'medium' | 'high'

/** The cookie attributes decided at registration (secure and lifetime live in the knobs). */
export interface CookieAttributes {
  path: string
  domain?: string
  sameSite: SameSite
  httpOnly: boolean
  partitioned?: boolean
  priority?: Priority
}

export interface Signer {
  sign (value: string): string
  unsign (signed: string): { valid: boolean, renew: boolean, value: string | null }
}

export interface FastifySessionOptions {
  cookie: CookieAttributes
  cookiePrefix: string
  algorithm: string
  /** A signer object passed as `secret` (then no secrets are read). */
  signer?: Signer
  idGenerator?: (request?: any) => string
  saveUninitialized: boolean
  rolling: boolean
  /**
   * Knob values given through @fastify/session's names: `cookie.secure` (→ cookieSecure) and
   * `cookie.maxAge` in ms (→ ttl). Already checked against the knob option of the same meaning.
   */
  cookieSecure?: 'auto' | boolean
  maxAgeMs?: number
  /** `cookie.maxAge: null`: session cookies carry no Expires (the stored session still ends at ttl). */
  browserSessionCookie: boolean
  /** One-time warnings (options that cost a guarantee). */
  warnings: string[]
}

/** What a refused or invalid option says: one line, the option, the value, what is accepted. */
function invalid (name: string, value: unknown, extra?: string): KnobError {
  const rule = RULES.get(name)
  const shown = typeof value === 'function' ? 'a function' : (JSON.stringify(value) ?? String(value))
  return new KnobError(`option ${name}=${shown} is not valid${extra !== undefined ? ` (${extra})` : ''}; accepted: ${rule?.accepted ?? 'see the README options table'}`)
}

function refused (name: string): KnobError {
  const rule = RULES.get(name) as OptionRule
  return new KnobError(`option ${name} is refused: ${rule.note}`)
}

function warning (name: string): string {
  const rule = RULES.get(name) as OptionRule
  return `sessions: option ${name} is honoured, but ${rule.note.replace(/^\w+ warns once: /, '')}`
}

/** Every top-level option name we know (knob plugin options and the table). */
export function knownOptionNames (): string[] {
  const names = new Set<string>(['cookie'])
  for (const knob of knobsInGroup('session')) if (knob.pluginOption !== undefined) names.add(knob.pluginOption)
  for (const rule of OPTION_RULES) names.add(rule.name.split('.')[0])
  return [...names]
}

function cookieFieldNames (): string[] {
  return OPTION_RULES.filter((r) => r.name.startsWith('cookie.')).map((r) => r.name.slice('cookie.'.length))
}

function unknownOption (name: string, candidates: readonly string[], where = ''): KnobError {
  const near = closest(name, candidates)
  return new KnobError(`option ${where}${name} is not a sessions option${near !== undefined ? ` (did you mean ${where}${near}?)` : ''}; accepted: ${candidates.map((c) => where + c).join(', ')}`)
}

function isSigner (value: unknown): value is Signer {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    typeof (value as Signer).sign === 'function' && typeof (value as Signer).unsign === 'function'
}

function bool (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid(name, value)
  return value
}

/**
 * Reads and checks the non-knob options (and the @fastify/session spellings of knobs). Pure: the
 * caller (config.ts) merges `cookieSecure`/`maxAgeMs` into the knobs and logs the warnings.
 */
export function readFastifySessionOptions (options: Record<string, unknown>): FastifySessionOptions {
  const known = knownOptionNames()
  for (const name of Object.keys(options)) {
    if (options[name] === undefined || FASTIFY_REGISTER_OPTIONS.has(name)) continue
    if (!known.includes(name)) throw unknownOption(name, known)
  }
  const warnings: string[] = []

  const signer = isSigner(options.secret) ? options.secret : undefined
  let algorithm = 'sha256'
  if (options.algorithm !== undefined) {
    if (signer !== undefined) throw invalid('algorithm', options.algorithm, 'secret is a signer object, which signs by itself')
    if (typeof options.algorithm !== 'string' || !hmacWorks(options.algorithm)) throw invalid('algorithm', options.algorithm)
    algorithm = options.algorithm
  }

  const cookiePrefix = options.cookiePrefix ?? ''
  if (typeof cookiePrefix !== 'string' || /[\s;,]/.test(cookiePrefix)) throw invalid('cookiePrefix', options.cookiePrefix)

  let idGenerator: FastifySessionOptions['idGenerator']
  if (options.idGenerator !== undefined) {
    if (typeof options.idGenerator !== 'function') throw invalid('idGenerator', options.idGenerator)
    idGenerator = options.idGenerator as (request?: unknown) => string
  }

  const saveUninitialized = bool('saveUninitialized', options.saveUninitialized, false)
  if (saveUninitialized) warnings.push(warning('saveUninitialized'))
  const rolling = bool('rolling', options.rolling, false)
  if (rolling) warnings.push(warning('rolling'))

  const cookie = readCookie(options.cookie, options, warnings)
  return { ...cookie, cookiePrefix, algorithm, signer, idGenerator, saveUninitialized, rolling, warnings }
}

function readCookie (raw: unknown, options: Record<string, unknown>, warnings: string[]): Pick<FastifySessionOptions, 'cookie' | 'cookieSecure' | 'maxAgeMs' | 'browserSessionCookie'> {
  const cookie: CookieAttributes = { path: '/', sameSite: 'lax', httpOnly: true }
  if (raw === undefined) return { cookie, browserSessionCookie: false }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new KnobError(`option cookie=${JSON.stringify(raw)} is not valid; accepted: an object with ${cookieFieldNames().join(', ')}`)
  }
  const c = raw as Record<string, unknown>
  const fields = cookieFieldNames()
  for (const name of Object.keys(c)) {
    if (c[name] === undefined) continue
    if (!fields.includes(name)) throw unknownOption(name, fields, 'cookie.')
    if (RULES.get(`cookie.${name}`)?.verdict === 'refused') throw refused(`cookie.${name}`)
  }

  if (c.path !== undefined) {
    if (typeof c.path !== 'string' || !c.path.startsWith('/') || /[;\s]/.test(c.path)) throw invalid('cookie.path', c.path)
    cookie.path = c.path
  }
  if (c.domain !== undefined) {
    if (typeof c.domain !== 'string' || !/^\.?[A-Za-z0-9.-]+$/.test(c.domain)) throw invalid('cookie.domain', c.domain)
    cookie.domain = c.domain
  }

  let cookieSecure: 'auto' | boolean | undefined
  if (c.secure !== undefined) {
    if (c.secure !== true && c.secure !== false && c.secure !== 'auto') throw invalid('cookie.secure', c.secure)
    cookieSecure = c.secure
    const other = options.cookieSecure
    if (other !== undefined && String(other) !== String(c.secure)) {
      throw new KnobError(`option cookie.secure=${JSON.stringify(c.secure)} and option cookieSecure=${JSON.stringify(other)} disagree; accepted: one of them, or both with the same value`)
    }
  }

  if (c.sameSite !== undefined) {
    const s = typeof c.sameSite === 'string' ? c.sameSite.toLowerCase() : c.sameSite
    if (s !== 'lax' && s !== 'strict' && s !== 'none' && s !== true && s !== false) throw invalid('cookie.sameSite', c.sameSite)
    if (s === 'none' && (cookieSecure ?? options.cookieSecure) === false) {
      throw invalid('cookie.sameSite', c.sameSite, 'browsers drop a SameSite=None cookie that is not Secure, and cookie.secure is false')
    }
    cookie.sameSite = s === true ? 'strict' : s
  }
  if (c.httpOnly !== undefined) {
    if (typeof c.httpOnly !== 'boolean') throw invalid('cookie.httpOnly', c.httpOnly)
    cookie.httpOnly = c.httpOnly
    if (!c.httpOnly) warnings.push(warning('cookie.httpOnly'))
  }
  if (c.partitioned !== undefined) {
    if (typeof c.partitioned !== 'boolean') throw invalid('cookie.partitioned', c.partitioned)
    if (c.partitioned && (cookieSecure ?? options.cookieSecure) === false) {
      throw invalid('cookie.partitioned', c.partitioned, 'browsers drop a Partitioned cookie that is not Secure, and cookie.secure is false')
    }
    if (c.partitioned) cookie.partitioned = true
  }
  if (c.priority !== undefined) {
    const p = typeof c.priority === 'string' ? c.priority.toLowerCase() : c.priority
    if (p !== 'low' && p !== 'medium' && p !== 'high') throw invalid('cookie.priority', c.priority)
    cookie.priority = p
  }

  let maxAgeMs: number | undefined
  const browserSessionCookie = c.maxAge === null
  if (c.maxAge !== undefined && !browserSessionCookie) {
    if (typeof c.maxAge !== 'number' || !Number.isFinite(c.maxAge) || c.maxAge < 1000) throw invalid('cookie.maxAge', c.maxAge)
    maxAgeMs = Math.round(c.maxAge)
  }
  return { cookie, cookieSecure, maxAgeMs, browserSessionCookie }
}

function hmacWorks (algorithm: string): boolean {
  try {
    crypto.createHmac(algorithm, 'probe').update('x').digest()
    return true
  } catch {
    return false
  }
}
