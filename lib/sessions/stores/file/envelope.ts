/**
 * On-disk format of one session record: a one-line header, then the session JSON text verbatim.
 *
 *   fps1 <byte length of the JSON>\n<JSON>
 *
 * Why not `{"expiresAt":…,"data":…}`: the expiry lives in the file's mtime (file.ts), so the
 * envelope only has to (a) keep our metadata out of the user's session object (pitfall 12:
 * session-file-store injects `__lastAccess` into it) and (b) let a truncated or foreign file be
 * told apart from a record, so it is a miss instead of a parse error turned 500 (pitfall 11).
 * The byte length catches truncation; the magic catches garbage; the JSON text is returned byte
 * for byte without being parsed and re-serialized here.
 */
const MAGIC = 'fps1 '
const MAX_HEADER = 32
/** Bytes enough to tell one of our records from another store's file (file/other-stores.ts). */
export const RECORD_MAGIC_BYTES = MAGIC.length

/** Do these first bytes of a file start a record of ours? */
export function hasRecordMagic (head: Buffer): boolean {
  return head.length >= MAGIC.length && head.toString('latin1', 0, MAGIC.length) === MAGIC
}

export function encodeRecord (json: string): Buffer {
  const body = Buffer.from(json, 'utf8')
  return Buffer.concat([Buffer.from(`${MAGIC}${body.length}\n`, 'latin1'), body])
}

/** The JSON text, or `null` when the bytes are not a complete record. */
export function decodeRecord (bytes: Buffer): string | null {
  const nl = bytes.indexOf(10)
  if (nl < 0 || nl > MAX_HEADER) return null
  const header = bytes.toString('latin1', 0, nl)
  if (!header.startsWith(MAGIC)) return null
  const lengthText = header.slice(MAGIC.length)
  if (!/^\d{1,15}$/.test(lengthText)) return null
  const length = Number(lengthText)
  if (bytes.length - nl - 1 !== length || length === 0) return null
  return bytes.toString('utf8', nl + 1)
}
