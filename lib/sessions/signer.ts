/**
 * The cookie signer handed to @fastify/session: @fastify/cookie's Signer (the first secret signs,
 * all verify) that remembers the cookies it has just verified.
 *
 * Why: @fastify/session signs the id again (one HMAC) every time it builds a session from a store
 * record, right after it verified the very cookie that carries that signature (one HMAC more).
 * HMAC is deterministic: a cookie that verified with the signing secret (`renew: false`) IS
 * sign(id), so sign(id) can return it. A cookie signed with an older secret is not remembered
 * (sign must produce the new signature: that is how rotation re-signs cookies).
 */
import { Signer } from '@fastify/cookie'

/** Ids remembered at most; the memory is dropped and refilled beyond it. */
const MAX_REMEMBERED = 10_000

export class RememberingSigner {
  private readonly signer: Signer
  private readonly verified = new Map<string, string>()

  constructor (secrets: string[]) {
    this.signer = new Signer(secrets, 'sha256')
  }

  sign (value: string): string {
    return this.verified.get(value) ?? this.signer.sign(value)
  }

  unsign (signedValue: string): { valid: boolean, renew: boolean, value: string | null } {
    const result = this.signer.unsign(signedValue)
    if (result.valid && !result.renew && result.value !== null) {
      if (this.verified.size >= MAX_REMEMBERED) this.verified.clear()
      this.verified.set(result.value, signedValue)
    }
    return result
  }
}
