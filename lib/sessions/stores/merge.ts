/**
 * Applying a SessionPatch to a stored record's JSON text, for the stores that merge in this
 * process (memory; file, under its record lock). The Redis store does the same inside Redis
 * (redis/patch.ts), splicing the JSON text instead of parsing it.
 *
 * Members keep their stored order; new ones go last. Members the patch does not name are
 * re-serialized from their parsed value, which is lossless for anything JSON.stringify wrote (the
 * only writer of these records is a JavaScript process).
 */
import type { SessionPatch } from './types'
import { sessionTooLarge } from '../size-limit'

/** A record's JSON text parsed, or `null` when it is not a JSON object. */
export function parseRecord (json: string): Record<string, unknown> | null {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return null
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null
}

/** The merged JSON text, or `null` when `json` is not a JSON object. */
export function mergeRecord (json: string, patch: SessionPatch): string | null {
  // Nothing else wrote since the request loaded it: the merge is the request's whole record.
  if (patch.whole !== undefined && json === patch.base) return patch.whole
  const stored = parseRecord(json)
  if (stored === null) return null
  const set = new Map(patch.set)
  const unset = new Set(patch.unset)
  const members: string[] = []
  for (const name of Object.keys(stored)) {
    if (unset.has(name)) continue
    const replaced = set.get(name)
    if (replaced !== undefined) {
      members.push(`${JSON.stringify(name)}:${replaced}`)
      set.delete(name)
      continue
    }
    const text = JSON.stringify(stored[name])
    if (text !== undefined) members.push(`${JSON.stringify(name)}:${text}`)
  }
  for (const [name, text] of set) members.push(`${JSON.stringify(name)}:${text}`)
  return `{${members.join(',')}}`
}

/**
 * mergeRecord, and the merged record checked against the session-size limit (size-limit.ts): a
 * record over `maxBytes` is refused with SessionTooLargeError (413), nothing written.
 */
export function mergeWithin (json: string, patch: SessionPatch, maxBytes: number | undefined): string | null {
  const merged = mergeRecord(json, patch)
  if (merged === null || maxBytes === undefined) return merged
  const tooLarge = sessionTooLarge(merged, maxBytes)
  if (tooLarge !== null) throw tooLarge
  return merged
}

/**
 * One patch with the effect of applying `older` then `newer` (the file store's write queue folds
 * the patches that waited into one write).
 */
export function combinePatches (older: SessionPatch, newer: SessionPatch): SessionPatch {
  const set = new Map(older.set)
  const unset = new Set(older.unset)
  for (const [name, text] of newer.set) {
    set.set(name, text)
    unset.delete(name)
  }
  for (const name of newer.unset) {
    set.delete(name)
    unset.add(name)
  }
  return { set: [...set], unset: [...unset] }
}
