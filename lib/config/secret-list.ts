/**
 * Cookie-signing secrets, from text (SESSION_SECRET, --session-secret) or from code (the plugin's
 * `secret` option, serve()'s `sessionSecret`). Each ends up as the HMAC key of @fastify/cookie's
 * Signer, which takes strings and Buffers alike (crypto.createHmac), so neither kind is converted.
 *
 * - Text is a comma list, each entry trimmed (the env-variable convention).
 * - In code a string is ONE secret, used exactly as given; a list is an array; a Buffer is used as
 *   its bytes. Issue 10: a Buffer used to be turned into text (invalid UTF-8 became U+FFFD, so
 *   `Buffer.alloc(40, 0x80)` and `Buffer.alloc(40, 0x81)` were the same secret) and split on its
 *   comma bytes (of 200 random 48-byte Buffers, 42 were refused by chance); a string was split on
 *   commas and trimmed, silently. A string that reads as a comma list of full-length secrets is
 *   refused as ambiguous: one secret or two was meant, and guessing wrong locks users out or
 *   keeps an old secret valid.
 * - Every entry: at least 32 characters (a string) or 32 bytes (a Buffer); never echoed in errors.
 */
import { KnobError } from './knob-error'

export type Secret = string | Buffer

export const MIN_SECRET_LENGTH = 32

export const SECRETS_ACCEPTED_TEXT = `a comma-separated list of secrets, each at least ${MIN_SECRET_LENGTH} characters`
export const SECRETS_ACCEPTED_CODE = `a string (one secret, used as given), a Buffer (its bytes), or an array of them; each at least ${MIN_SECRET_LENGTH} characters or bytes`

/** `where` names the source in errors: `SESSION_SECRET`, `--session-secret`, `option secret`. */
export function parseSecrets (raw: unknown, where: string, fromCode: boolean): Secret[] {
  return fromCode ? secretsFromCode(raw, where) : secretsFromText(raw, where)
}

function secretsFromText (raw: unknown, where: string): string[] {
  const list = String(raw).split(',').map((s) => s.trim()).filter(Boolean)
  if (list.length === 0) throw new KnobError(`${where}=(hidden) is not valid for session-secret; accepted: ${SECRETS_ACCEPTED_TEXT}`)
  list.forEach((s, i) => { checkLength(s, `${where} entry ${i + 1} of ${list.length}`, SECRETS_ACCEPTED_TEXT) })
  return list
}

function secretsFromCode (raw: unknown, where: string): Secret[] {
  if (Array.isArray(raw)) {
    if (raw.length === 0) throw new KnobError(`${where} is an empty list; accepted: ${SECRETS_ACCEPTED_CODE}`)
    return raw.map((entry, i) => oneSecret(entry, `${where} entry ${i + 1} of ${raw.length}`))
  }
  const secret = oneSecret(raw, where)
  if (typeof secret === 'string' && secret.includes(',')) {
    const parts = secret.split(',').map((s) => s.trim())
    if (parts.every((p) => p.length >= MIN_SECRET_LENGTH)) {
      throw new KnobError(`${where} is a string that reads as a comma-separated list of ${parts.length} secrets; in code a string is one secret: pass several as an array (['new', 'old']), or this text through SESSION_SECRET`)
    }
  }
  return [secret]
}

function oneSecret (value: unknown, where: string): Secret {
  if (typeof value === 'string') {
    checkLength(value, where, SECRETS_ACCEPTED_CODE)
    return value
  }
  if (value instanceof Uint8Array) {
    // A copy: the caller's Buffer may be reused or zeroed later; ours must stay what was given.
    const bytes = Buffer.from(value)
    if (bytes.length < MIN_SECRET_LENGTH) throw new KnobError(`${where} is a Buffer of ${bytes.length} bytes; accepted: ${SECRETS_ACCEPTED_CODE}`)
    return bytes
  }
  const kind = value === null ? 'null' : Array.isArray(value) ? 'a nested list' : `a ${typeof value}`
  throw new KnobError(`${where} is ${kind}; accepted: ${SECRETS_ACCEPTED_CODE}`)
}

function checkLength (secret: string, where: string, accepted: string): void {
  if (secret.length < MIN_SECRET_LENGTH) throw new KnobError(`${where} has ${secret.length} characters; accepted: ${accepted}`)
}

/**
 * Secrets given to serve() in code travel to the sessions plugin (in this process or each worker)
 * as SESSION_SECRET text. Only what that text carries exactly may go: a Buffer would become text,
 * a secret with a comma would be split. Those are refused, naming the way that works.
 */
export function secretsAsEnvText (secrets: Secret[], where: string): string {
  secrets.forEach((secret, i) => {
    const entry = secrets.length > 1 ? `${where} entry ${i + 1} of ${secrets.length}` : where
    if (typeof secret !== 'string') {
      throw new KnobError(`${entry} is a Buffer, which serve() can only hand to the app as SESSION_SECRET text; accepted here: strings without commas (pass a Buffer to the sessions plugin's secret option instead)`)
    }
    if (secret.includes(',') || secret.trim() !== secret) {
      throw new KnobError(`${entry} contains a comma or surrounding spaces, which the SESSION_SECRET text it is handed on as cannot carry; accepted here: strings without commas (pass it to the sessions plugin's secret option instead)`)
    }
  })
  return secrets.join(',')
}
