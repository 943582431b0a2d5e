/**
 * Converters from raw knob input (env strings, CLI strings, values in code) to typed values.
 * Each throws a KnobError whose message is one line: where the value came from, the value, and
 * what is accepted.
 */
import type { KnobDefinition, ListenAddress } from './knobs'
import { KnobError } from './knob-error'
import { parseSecrets, SECRETS_ACCEPTED_TEXT } from './secret-list'

export { KnobError }

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on'])
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off'])
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 }

/** What each kind accepts, in the words of an error message. */
export function acceptedText (knob: KnobDefinition): string {
  switch (knob.kind) {
    case 'boolean': return '1/0/true/false/yes/no/on/off'
    case 'integer': return `a whole number${rangeText(knob)}`
    case 'number': return `a number${rangeText(knob)}`
    case 'duration': return `a duration such as ${(knob.min ?? 0) >= 1000 ? '30s, 2m or 1h' : '500ms, 30s or 2m'} (a bare number means ${knob.bareUnit === 'ms' ? 'milliseconds' : 'seconds'})${rangeText(knob, durationText)}`
    case 'size': return `a size in bytes, or with a kb/mb/gb suffix${rangeText(knob)}`
    case 'enum': return (knob.values ?? []).join(', ')
    case 'addresses': return 'a space- or comma-separated list of host:port ([::1]:8080 for IPv6, *:8080 for all interfaces)'
    case 'octal': return 'octal permissions such as 600 or 660'
    case 'secrets': return SECRETS_ACCEPTED_TEXT
    case 'list': return 'a comma-separated list'
    case 'string': return 'a non-empty string'
  }
}

function rangeText (knob: KnobDefinition, show: (n: number) => string = String): string {
  const min = knob.min !== undefined ? show(knob.min) : undefined
  const max = knob.max !== undefined ? show(knob.max) : undefined
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`
  if (min !== undefined) return ` of at least ${min}`
  if (max !== undefined) return ` of at most ${max}`
  return ''
}

/**
 * Parses one raw value for a knob. `where` names the source in the error ("PRODSERVER_PORT",
 * "--port", "option port"). `fromCode`: the value was given in code, not as text (env, CLI) — it
 * matters for secrets (config/secret-list.ts).
 */
export function parseKnobValue (knob: KnobDefinition, raw: unknown, where: string, fromCode = false): unknown {
  const fail = (): never => {
    // Strings are quoted (env/CLI text); values passed in code show as written (`workers=0`).
    const shown = knob.secret ? '(hidden)' : (JSON.stringify(raw) ?? String(raw))
    throw new KnobError(`${where}=${shown} is not valid for ${knob.name}; accepted: ${acceptedText(knob)}`)
  }
  const text = typeof raw === 'string' ? raw.trim() : raw
  switch (knob.kind) {
    case 'boolean': {
      if (typeof text === 'boolean') return text
      const word = String(text).toLowerCase()
      if (TRUE_WORDS.has(word)) return true
      if (FALSE_WORDS.has(word)) return false
      return fail()
    }
    case 'integer':
    case 'number': {
      const n = typeof text === 'number' ? text : (typeof text === 'string' && text !== '' ? Number(text) : NaN)
      if (!Number.isFinite(n) || (knob.kind === 'integer' && !Number.isInteger(n))) return fail()
      return inRange(knob, n) ? n : fail()
    }
    case 'duration': {
      const ms = parseDuration(text, knob.bareUnit ?? 's')
      return ms !== undefined && inRange(knob, ms) ? ms : fail()
    }
    case 'size': {
      const bytes = parseSize(text)
      return bytes !== undefined && inRange(knob, bytes) ? bytes : fail()
    }
    case 'enum': {
      const word = String(text).toLowerCase()
      return knob.values?.includes(word) ? word : fail()
    }
    case 'octal': {
      const s = typeof text === 'number' ? text.toString(8) : String(text)
      return /^0?[0-7]{3,4}$/.test(s) ? parseInt(s, 8) : fail()
    }
    case 'addresses': {
      if (Array.isArray(text)) return text.map((a) => parseAddress(typeof a === 'string' ? a : `${a.host}:${a.port}`) ?? fail())
      const parts = String(text).split(/[\s,]+/).filter(Boolean)
      if (parts.length === 0) return fail()
      return parts.map((p) => parseAddress(p) ?? fail())
    }
    case 'secrets': return parseSecrets(raw, where, fromCode)
    case 'list': {
      const list = Array.isArray(text) ? text.map(String) : String(text).split(',').map((s) => s.trim()).filter(Boolean)
      return list.length > 0 ? list : fail()
    }
    case 'string': {
      if (typeof text !== 'string' || text === '') return fail()
      return text
    }
  }
}

/** Duration bounds are stored in ms; shown with their unit so "at least 1ms" is not misread as seconds. */
function durationText (ms: number): string {
  return ms !== 0 && ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

function inRange (knob: KnobDefinition, n: number): boolean {
  return (knob.min === undefined || n >= knob.min) && (knob.max === undefined || n <= knob.max)
}

/** `500ms`, `30s`, `2m`, `1h`, or a bare number in `bareUnit`. Returns milliseconds. */
export function parseDuration (raw: unknown, bareUnit: 's' | 'ms'): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) && raw >= 0 ? raw * (bareUnit === 's' ? 1000 : 1) : undefined
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(String(raw).trim())
  if (!m) return undefined
  const unit = m[2] ? DURATION_UNITS[m[2].toLowerCase()] : (bareUnit === 's' ? 1000 : 1)
  return Math.round(Number(m[1]) * unit)
}

/** `65536`, `64kb`, `1mb`, `1.5m`. Returns bytes. */
export function parseSize (raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw >= 0 ? raw : undefined
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?$/i.exec(String(raw).trim())
  if (!m) return undefined
  const bytes = Number(m[1]) * (m[2] ? SIZE_UNITS[m[2].toLowerCase()] : 1)
  return Number.isInteger(bytes) ? bytes : Math.floor(bytes)
}

/** `host:port`, `[v6]:port`, `*:port` (all interfaces). */
export function parseAddress (raw: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(raw.trim())
  if (!m) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? (m[2] === '*' ? '0.0.0.0' : m[2])
  return { host, port }
}

/** Renders a parsed value back the way a user would type it (help, config output). */
export function formatKnobValue (knob: KnobDefinition, value: unknown): string {
  if (value === undefined) return knob.defaultText ?? '—'
  if (knob.secret) return Array.isArray(value) ? `(${value.length} hidden)` : '(hidden)'
  switch (knob.kind) {
    case 'duration': {
      const ms = value as number
      if (knob.bareUnit === 'ms' || ms % 1000 !== 0) return `${ms}ms`
      return `${ms / 1000}s`
    }
    case 'size': {
      const b = value as number
      if (b % (1024 * 1024) === 0) return `${b / 1024 / 1024}mb`
      if (b % 1024 === 0) return `${b / 1024}kb`
      return String(b)
    }
    case 'octal': return (value as number).toString(8)
    case 'addresses': return (value as ListenAddress[]).map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)).join(' ')
    case 'list': return (value as string[]).join(',')
    case 'string': return knob.name === 'redis-url' ? redactUrl(value as string) : String(value)
    default: return String(value)
  }
}

/** `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`: passwords never reach logs. */
export function redactUrl (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_, scheme: string, auth: string) => {
    const colon = auth.indexOf(':')
    return colon === -1 ? `${scheme}***@` : `${scheme}${auth.slice(0, colon)}:***@`
  })
}
