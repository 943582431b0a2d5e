/**
 * What a request changed in its session, as a patch of top-level members (stores/types.ts
 * SessionPatch), so that concurrent requests of one user changing different members all land
 * instead of the last whole-session write undoing the others (issue 14; connect-redis#75,
 * express-session#361, fastify-session#237).
 *
 * Detection compares, member by member, the JSON text of the session at save time with the JSON
 * text of the record it was loaded from. That sees every way an application changes a session —
 * `session.set(k, v)`, `session.k = v`, `delete session.k`, a nested object mutated in place —
 * because it compares values, not calls. The loaded text is only kept (a reference to a string the
 * store returned anyway) and is parsed again only when the request saves: read-only requests,
 * which @fastify/session never saves, pay nothing.
 *
 * The unit is the top-level member: a nested object is one value, replaced whole. Two requests
 * changing different fields of one nested object conflict, and the later one wins.
 */
import type { SessionPatch } from './stores/types'
import { parseRecord } from './stores/merge'

/** Member name → JSON text of its value, as stored. */
export type Members = Map<string, string>

export interface SessionChanges {
  patch: SessionPatch
  /** The session's members after the write: the base of a later save of the same request. */
  members: Members
}

/**
 * The sessions loaded from the store, each with the record it was loaded from (later: the members
 * it last saved). Keyed by the Session object @fastify/session builds for one request, so two
 * requests of one user in one process each have their own base.
 */
export class LoadedSessions {
  private readonly bases = new WeakMap<object, string | Members>()
  private readonly gone = new WeakSet<object>()

  /** `json`: the record text the session was built from. */
  remember (session: object, json: string): void {
    this.bases.set(session, json)
  }

  /** The request's changes since load (or since its last save); undefined: not a loaded session. */
  changesOf (session: object): SessionChanges | undefined {
    const base = this.bases.get(session)
    if (base === undefined) return undefined
    const after = membersOfSession(session)
    // First save of the request: the base is the loaded text, and the whole record lets a store
    // that still holds that text skip the merge (merge.ts); unchanged, it needs no diff at all.
    const whole = typeof base === 'string' ? recordOf(after) : undefined
    const edge = typeof base === 'string' ? { base, whole } : {}
    if (whole !== undefined && whole === base) return { patch: { set: [], unset: [], ...edge }, members: after }
    const before = typeof base === 'string' ? membersOfRecord(base) : base
    if (before === null) return undefined
    const set: Array<[string, string]> = []
    const unset: string[] = []
    for (const [name, text] of after) if (before.get(name) !== text) set.push([name, text])
    for (const name of before.keys()) if (!after.has(name)) unset.push(name)
    return { patch: { set, unset, ...edge }, members: after }
  }

  /** The session was saved with these members: later saves of this request patch from there. */
  saved (session: object, members: Members): void {
    this.bases.set(session, members)
  }

  /** Its save found no session in the store (destroyed, regenerated or expired meanwhile): nothing was written. */
  markGone (session: object): void {
    this.gone.add(session)
  }

  foundGone (session: object): boolean {
    return this.gone.has(session)
  }
}

/**
 * The cookie fields a record keeps (what the adapter's restoredCookie reads back): the session's
 * lifetime, path, domain, partitioned. Not expires/secure/sameSite/httpOnly (see adapter.ts).
 */
export function storedCookie (c: unknown): Record<string, unknown> | undefined {
  if (typeof c !== 'object' || c === null) return undefined
  const from = c as Record<string, unknown>
  const cookie: Record<string, unknown> = { originalMaxAge: from.originalMaxAge }
  if (typeof from.path === 'string') cookie.path = from.path
  if (typeof from.domain === 'string') cookie.domain = from.domain
  if (from.partitioned === true) cookie.partitioned = true
  return cookie
}

/** The members of a live session as they would be stored (JSON.stringify's rules: undefined, functions and symbols are absent). */
function membersOfSession (session: object): Members {
  const members: Members = new Map()
  const s = session as Record<string, unknown>
  for (const name of Object.keys(s)) {
    const text = JSON.stringify(name === 'cookie' ? storedCookie(s.cookie) : s[name])
    if (text !== undefined) members.set(name, text)
  }
  return members
}

/** The record text of these members (what JSON.stringify of the object would write). */
function recordOf (members: Members): string {
  let text = ''
  for (const [name, value] of members) text += `${text === '' ? '{' : ','}${JSON.stringify(name)}:${value}`
  return text === '' ? '{}' : `${text}}`
}

function membersOfRecord (json: string): Members | null {
  const record = parseRecord(json)
  if (record === null) return null
  const members: Members = new Map()
  for (const [name, value] of Object.entries(record)) {
    const text = JSON.stringify(value)
    if (text !== undefined) members.set(name, text)
  }
  return members
}
