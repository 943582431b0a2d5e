/**
 * The contract every SessionRecordStore honours (lib/sessions/stores/types.ts), run against each
 * store: test/store-contract-{file,memory,redis}.test.ts.
 *
 *   import { storeContract } from './helpers/store-contract'
 *   t.test('contract', async (t) => {
 *     await storeContract(t, async () => ({ store: new MyStore(…), cleanup: () => store.close() }))
 *   })
 *
 * `makeStore` is called once per case (a fresh store each time: tombstones and records of one case
 * cannot leak into another); `cleanup` runs in that case's teardown. Ids are random, so stores may
 * share a backend. Bounds are generous (2 shared cores): they separate "fast" from "retries with
 * sleeps" (session-file-store: ~260 ms per miss, research §4.1), not 1 ms from 2 ms.
 */
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { RefusedSessionIdError, MAX_SESSION_ID_LENGTH, type SessionRecordStore } from '../../lib/sessions/stores/types'
import { patchContract } from './store-patch-contract'

export type MakeStore = () => Promise<{ store: SessionRecordStore, cleanup: () => Promise<void> }>

/** A fresh id shaped like @fastify/session's (32 base64url characters). */
export function newSessionId (): string {
  return randomBytes(24).toString('base64url')
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Ids that must never reach a path or a key (pitfall 8). */
export const INVALID_IDS: readonly string[] = [
  '../x', '../../../../etc/passwd', '/etc/passwd', 'a\0b', '', 'A'.repeat(200), '..', '.',
  'abcdefghijklmnop.json', 'abcdefghijklmnop/../../x', 'abcdefghij\\..\\..\\x', 'abcdefghijklmnop\n',
  'abcdefghijklmnopqrs tuvwxyz', 'ümlautümlautümlaut'
]

export async function storeContract (t: Test, makeStore: MakeStore): Promise<void> {
  async function open (t: Test): Promise<SessionRecordStore> {
    const { store, cleanup } = await makeStore()
    t.teardown(cleanup)
    return store
  }

  await t.test('get of an unknown id is null, at once (no retries)', async (t) => {
    const store = await open(t)
    const start = performance.now()
    for (let i = 0; i < 20; i++) t.equal(await store.get(newSessionId()), null)
    const ms = performance.now() - start
    t.ok(ms < 1000, `20 misses took ${ms.toFixed(1)} ms (bound 1000 ms; a 5-retry store needs ~5 s)`)
  })

  await t.test('set then get returns the JSON text byte for byte', async (t) => {
    const store = await open(t)
    const texts = [
      '{"user":"alice","n":1}',
      '{ "spaced" : [ 1 , 2 ] ,\n  "keepsFormatting": 1.50 }',
      JSON.stringify({ unicode: 'ü€𝄞 中文 \u2028\u2029', esc: '"\\/\n\t', lone: '\ud800', nul: '\u0000' }),
      JSON.stringify({ big: 'x'.repeat(100_000), list: Array.from({ length: 500 }, (_, i) => ({ i })) })
    ]
    for (const json of texts) {
      const id = newSessionId()
      await store.set(id, json, 60_000)
      const got = await store.get(id)
      t.equal(got?.json, json, `round trip of ${json.length} chars`)
    }
    const id = newSessionId()
    await store.set(id, '{"v":1}', 60_000)
    await store.set(id, '{"v":2}', 60_000)
    t.equal((await store.get(id))?.json, '{"v":2}', 'a second set replaces the first')
  })

  await t.test('expiresAt is now + ttl', async (t) => {
    const store = await open(t)
    const id = newSessionId()
    const before = Date.now()
    await store.set(id, '{"a":1}', 60_000)
    const after = Date.now()
    const got = await store.get(id)
    t.ok(got !== null, 'record present')
    const e = got?.expiresAt ?? 0
    t.ok(e >= before + 60_000 - 1000 && e <= after + 60_000 + 1000, `expiresAt ${e - before} ms after set (ttl 60000)`)
  })

  await t.test('a record is gone after its ttl, and not before', async (t) => {
    const store = await open(t)
    const id = newSessionId()
    const setAt = Date.now()
    await store.set(id, '{"short":true}', 1200)
    await sleep(500)
    if (Date.now() - setAt < 1000) t.not(await store.get(id), null, 'still there at half its ttl')
    const deadline = setAt + 1200 + 2000
    let gone = false
    while (Date.now() < deadline) {
      if (await store.get(id) === null) { gone = true; break }
      await sleep(50)
    }
    const at = Date.now() - setAt
    t.ok(gone, `gone ${at} ms after set (ttl 1200 ms, slack 2000 ms)`)
    t.ok(at >= 1100, `not gone early (${at} ms)`)
  })

  await t.test('touch extends the life of a record', async (t) => {
    const store = await open(t)
    const id = newSessionId()
    await store.set(id, '{"keep":1}', 1000)
    const before = Date.now()
    await store.touch(id, 60_000)
    const got = await store.get(id)
    t.ok(got !== null && got.expiresAt >= before + 59_000, 'expiresAt moved to now + new ttl')
    t.equal(got?.json, '{"keep":1}', 'data unchanged by touch')
    await sleep(1300)
    t.equal((await store.get(id))?.json, '{"keep":1}', 'still there after the original ttl')
  })

  await t.test('touch never creates a record: not a missing one, not an expired one', async (t) => {
    const store = await open(t)
    const missing = newSessionId()
    await store.touch(missing, 60_000)
    t.equal(await store.get(missing), null, 'touch of an unknown id creates nothing')

    const id = newSessionId()
    await store.set(id, '{"old":1}', 300)
    const deadline = Date.now() + 3000
    while (await store.get(id) !== null && Date.now() < deadline) await sleep(50)
    t.equal(await store.get(id), null, 'expired')
    await store.touch(id, 60_000)
    t.equal(await store.get(id), null, 'touch after expiry does not bring it back')
  })

  await t.test('set with a ttl <= 0 ends the session; a non-string session is a TypeError', async (t) => {
    const store = await open(t)
    for (const ttl of [0, -5, Number.NaN]) {
      const id = newSessionId()
      await store.set(id, '{"a":1}', 60_000)
      await store.set(id, '{"a":2}', ttl)
      t.equal(await store.get(id), null, `ttl ${ttl} removed the record`)
    }
    await t.rejects(store.set(newSessionId(), { a: 1 } as unknown as string, 60_000), TypeError, 'an object instead of JSON text is refused')
  })

  await t.test('destroy removes the record; other records stay', async (t) => {
    const store = await open(t)
    const a = newSessionId()
    const b = newSessionId()
    await store.set(a, '{"a":1}', 60_000)
    await store.set(b, '{"b":1}', 60_000)
    await store.destroy(a)
    t.equal(await store.get(a), null, 'destroyed record is gone')
    t.equal((await store.get(b))?.json, '{"b":1}', 'another record is untouched')
    await t.resolves(store.destroy(newSessionId()), 'destroy of an unknown id is fine')
  })

  await t.test('after destroy, a late set or touch cannot bring the session back (tombstone)', async (t) => {
    const store = await open(t)
    const id = newSessionId()
    await store.set(id, '{"user":"alice"}', 60_000)
    await store.destroy(id)
    await t.resolves(store.set(id, '{"user":"alice","late":true}', 60_000), 'late set resolves (silent no-op)')
    t.equal(await store.get(id), null, 'late set did not resurrect the session')
    await store.touch(id, 60_000)
    t.equal(await store.get(id), null, 'touch after destroy did not resurrect it')

  })

  await t.test('destroying an id that was never saved leaves nothing behind (no tombstone to spam)', async (t) => {
    // A logout without a session, or regenerate() of a brand-new session, destroys an id no client
    // ever received: writing tombstones for those would let anyone fill the store by spamming logout.
    const store = await open(t)
    const never = newSessionId()
    await store.destroy(never)
    await store.set(never, '{"x":1}', 60_000)
    t.equal((await store.get(never))?.json, '{"x":1}', 'the id holds no tombstone: a later first save is stored')
  })

  await t.test('destroy racing with concurrent writes: the session stays destroyed', async (t) => {
    const store = await open(t)
    const ids = Array.from({ length: 20 }, () => newSessionId())
    await Promise.all(ids.map(async (id) => await store.set(id, '{"v":0}', 60_000)))
    await Promise.all(ids.map(async (id) => await Promise.all([
      store.set(id, '{"v":1}', 60_000),
      store.destroy(id),
      store.set(id, '{"v":2}', 60_000),
      store.touch(id, 60_000),
      store.set(id, '{"v":3}', 60_000)
    ])))
    const after = await Promise.all(ids.map(async (id) => await store.get(id)))
    t.same(after.filter((r) => r !== null), [], 'no destroyed session came back')
  })

  await t.test('invalid ids are refused with an error the caller sees, and nothing is stored', async (t) => {
    const store = await open(t)
    for (const bad of INVALID_IDS) {
      const label = JSON.stringify(bad.length > 24 ? bad.slice(0, 24) + '…' : bad)
      await t.rejects(store.get(bad), RefusedSessionIdError, `get(${label}) is refused`)
      await t.rejects(store.set(bad, '{"evil":1}', 60_000), RefusedSessionIdError, `set(${label}) is refused, not a silent success`)
      await t.rejects(store.touch(bad, 60_000), RefusedSessionIdError, `touch(${label}) is refused`)
      await t.rejects(store.destroy(bad), RefusedSessionIdError, `destroy(${label}) is refused`)
    }
    for (const notString of [undefined, null, 42, {}, ['abcdefghijklmnopqrstuvwxyz012345']]) {
      await t.rejects(store.get(notString as unknown as string), RefusedSessionIdError, `get(${typeof notString}) is refused`)
    }
    const err = await store.set('a'.repeat(MAX_SESSION_ID_LENGTH + 1), '{}', 60_000).catch((e: Error) => e)
    t.match(err, { statusCode: 500, message: /^session id refused: accepted ids are 1 to 128 characters of A-Z a-z 0-9 _ -; got 129 characters$/ }, 'the message says what is accepted')
    const secret = 'Zq9'.repeat(10) + '/'
    const withSecret = await store.set(secret, '{}', 60_000).catch((e: Error) => e)
    t.notOk(String((withSecret as Error).message).includes('Zq9Zq9'), 'the refused id is not echoed (it is a credential)')
  })

  await t.test('ids of any length from 1 to 128 in the safe alphabet work (custom id generators)', async (t) => {
    const store = await open(t)
    // Hex, so a random short id is never one of the odd ones below. Ids this short can recur in
    // another case sharing the backend: only ids of 8 characters and more are destroyed (a
    // tombstone would refuse that other case's save), the short ones are simply overwritten.
    const rand = randomBytes(64).toString('hex')
    for (const length of [1, 2, 8, 15, 16, 21, 36, 64, MAX_SESSION_ID_LENGTH]) {
      const id = rand.slice(0, length)
      await store.set(id, `{"len":${length}}`, 60_000)
      t.equal((await store.get(id))?.json, `{"len":${length}}`, `a ${length}-character id round-trips`)
      await store.touch(id, 60_000)
      if (length < 8) continue
      await store.destroy(id)
      t.equal(await store.get(id), null, `a ${length}-character id is destroyed`)
    }
    for (const id of ['-', '_', 'a-b_c', 'UPPER-lower_09']) {
      await store.set(id, '{"odd":1}', 60_000)
      t.equal((await store.get(id))?.json, '{"odd":1}', `${JSON.stringify(id)} round-trips`)
    }
  })

  await t.test('check() answers ok with a latency', async (t) => {
    const store = await open(t)
    const c = await store.check()
    t.equal(c.ok, true, 'ok')
    t.type(c.latencyMs, 'number')
    t.ok((c.latencyMs ?? -1) >= 0 && (c.latencyMs ?? Infinity) < 1000, `latency ${String(c.latencyMs)} ms`)
  })

  await t.test('close() can be called twice', async (t) => {
    const { store, cleanup } = await makeStore()
    await t.resolves(store.close(), 'first close')
    await t.resolves(store.close(), 'second close')
    await cleanup()
  })

  await patchContract(t, open)
}
