// The signer handed to @fastify/session reuses verified cookies instead of signing again; it must
// never change what a signature is: same bytes as a fresh HMAC, and rotation still re-signs.
import t from 'tap'
import { Signer } from '@fastify/cookie'
import { RememberingSigner } from '../lib/sessions/signer'

const NEW = 'n'.repeat(32) + '-new-secret'
const OLD = 'o'.repeat(32) + '-old-secret'
const ID = 'AbCdEfGhIjKlMnOpQrStUvWxYz012345'

t.test('a cookie verified with the signing secret is what sign() returns, byte for byte', async (t) => {
  const fresh = new Signer([NEW, OLD], 'sha256')
  const signer = new RememberingSigner([NEW, OLD])
  const cookie = fresh.sign(ID)
  t.same(signer.unsign(cookie), fresh.unsign(cookie), 'verification result unchanged')
  t.equal(signer.sign(ID), cookie)
  t.equal(signer.sign('another-id-never-seen-0123456789'), fresh.sign('another-id-never-seen-0123456789'), 'unknown ids are signed normally')
})

t.test('a cookie signed with an older secret is not reused: sign() gives the new signature', async (t) => {
  const oldOnly = new Signer([OLD], 'sha256')
  const signer = new RememberingSigner([NEW, OLD])
  const oldCookie = oldOnly.sign(ID)
  const result = signer.unsign(oldCookie)
  t.ok(result.valid, 'still accepted')
  t.ok(result.renew, 'and flagged for renewal')
  t.not(signer.sign(ID), oldCookie)
  t.equal(signer.sign(ID), new Signer([NEW], 'sha256').sign(ID))
})

t.test('a forged or tampered cookie is not remembered', async (t) => {
  const signer = new RememberingSigner([NEW])
  const forged = new Signer(['x'.repeat(40)], 'sha256').sign(ID)
  t.equal(signer.unsign(forged).valid, false)
  t.not(signer.sign(ID), forged)
  t.equal(signer.sign(ID), new Signer([NEW], 'sha256').sign(ID))
})

t.test('a cookie seen before verifies from memory with the same answer; near misses still fail', async (t) => {
  const fresh = new Signer([NEW, OLD], 'sha256')
  const signer = new RememberingSigner([NEW, OLD])
  const cookie = fresh.sign(ID)
  t.same(signer.unsign(cookie), { valid: true, renew: false, value: ID }, 'first time: full check')
  t.same(signer.unsign(cookie), { valid: true, renew: false, value: ID }, 'again: the same answer')
  const sig = cookie.slice(cookie.lastIndexOf('.') + 1)
  const flipped = `${ID}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`
  t.same(signer.unsign(flipped), fresh.unsign(flipped), 'one character off: rejected like a fresh check')
  t.equal(signer.unsign(flipped).valid, false)
  t.equal(signer.unsign(`${ID}.${sig}x`).valid, false, 'a longer signature: rejected')
  t.equal(signer.unsign(`${ID}.`).valid, false, 'no signature: rejected')
  t.equal(signer.unsign(`${ID}x.${sig}`).valid, false, 'the remembered signature on another id: rejected')
  const oldCookie = new Signer([OLD], 'sha256').sign(ID)
  t.same(signer.unsign(oldCookie), fresh.unsign(oldCookie), 'an old-secret cookie of a remembered id: still valid and flagged for renewal')
  t.equal(signer.unsign(oldCookie).renew, true, '…every time')
})
