/**
 * The cookie signer handed to @fastify/session: @fastify/cookie's Signer (the first secret signs,
 * all verify) that remembers the cookies it has just verified.
 *
 * Why: @fastify/session signs the id again (one HMAC) every time it builds a session from a store
 * record, right after it verified the very cookie that carries that signature (one HMAC more).
 * HMAC is deterministic: a cookie that verified with the signing secret (`renew: false`) IS
 * sign(id), so sign(id) can return it. A cookie signed with an older secret is not remembered
 * (sign must produce the new signature: that is how rotation re-signs cookies).
 *
 * The same memory answers unsign for a cookie seen before (a browser sends the same cookie with
 * every request): byte-for-byte the cookie that verified, compared in constant time, is valid
 * again without another HMAC. Only cookies that verified are remembered, the secrets never change
 * in a process, and a forged signature still goes through the full check.
 */
import { timingSafeEqual } from 'node:crypto'
import { Signer } from '@fastify/cookie'

/** Ids remembered at most; the memory is dropped and refilled beyond it. */
const MAX_REMEMBERED = 10_000

export class RememberingSigner {
  private readonly signer: Signer
  private readonly verified = new Map<string, string>()

  /** `algorithm`: the HMAC hash (@fastify/session's `algorithm` option). */
  constructor (secrets: Array<string | Buffer>, algorithm = 'sha256') {
    // Its types list string[] or Buffer[]; a mixed list works the same (each entry is checked and
    // used as an HMAC key on its own), and a Buffer stays bytes.
    this.signer = new Signer(secrets as Buffer[], algorithm)
  }

  sign (value: string): string {
    return this.verified.get(value) ?? this.signer.sign(value)
  }

  unsign (signedValue: string): { valid: boolean, renew: boolean, value: string | null } {
    const dot = typeof signedValue === 'string' ? signedValue.lastIndexOf('.') : -1
    if (dot > 0) {
      const value = signedValue.slice(0, dot)
      const remembered = this.verified.get(value)
      if (remembered !== undefined && sameBytes(remembered, signedValue)) return { valid: true, renew: false, value }
    }
    const result = this.signer.unsign(signedValue)
    if (result.valid && !result.renew && result.value !== null) {
      if (this.verified.size >= MAX_REMEMBERED) this.verified.clear()
      this.verified.set(result.value, signedValue)
    }
    return result
  }
}

/** Constant-time equality: how much of a guessed signature matches must not show in the timing. */
function sameBytes (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
