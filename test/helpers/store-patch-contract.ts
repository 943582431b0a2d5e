/**
 * The patch half of the store contract (SessionRecordStore.patch, lib/sessions/stores/types.ts),
 * run against every store by test/helpers/store-contract.ts: what a request's changes do to the
 * stored session, alone and interleaved with other patches, whole writes, destroy and expiry.
 *
 * The interleaving test is property-style: random batches of operations run concurrently, and the
 * record afterwards must equal what SOME order of that batch, applied one at a time to a model of
 * the store, would leave (the batches are small, so every order is tried). A seed is printed with
 * each failure; PATCH_SEED=<n> replays it.
 */
import type { Test } from 'tap'
import { RefusedSessionIdError, type SessionPatch, type SessionRecordStore } from '../../lib/sessions/stores/types'
import { SessionTooLargeError } from '../../lib/sessions/size-limit'

type Open = (t: Test) => Promise<SessionRecordStore>

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function newId (): string {
  return `p${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`.padEnd(32, 'x').slice(0, 32)
}

const patchOf = (set: Record<string, unknown>, unset: string[] = []): SessionPatch =>
  ({ set: Object.entries(set).map(([k, v]) => [k, JSON.stringify(v)] as const), unset })

async function membersOf (store: SessionRecordStore, id: string): Promise<Record<string, unknown> | null> {
  const got = await store.get(id)
  return got === null ? null : JSON.parse(got.json)
}

export async function patchContract (t: Test, open: Open): Promise<void> {
  await t.test('patch: sets and removes the named members, keeps every other member', async (t) => {
    const store = await open(t)
    if (store.patch === undefined) { t.fail(`${store.kind} store has no patch()`); return }
    const id = newId()
    await store.set(id, JSON.stringify({ user: 'alice', cart: [1, 2], prefs: { theme: 'dark' }, gone: true, cookie: { originalMaxAge: 1000 } }), 60_000)
    t.equal(await store.patch(id, patchOf({ cart: [1, 2, 3], added: { nested: [] } }, ['gone']), 60_000), 'applied')
    t.same(await membersOf(store, id), { user: 'alice', cart: [1, 2, 3], prefs: { theme: 'dark' }, cookie: { originalMaxAge: 1000 }, added: { nested: [] } },
      'cart replaced, added appended, gone removed, the rest as stored')
    t.equal(await store.patch(id, patchOf({}), 60_000), 'applied', 'an empty patch is fine')
    t.same(Object.keys((await membersOf(store, id)) ?? {}), ['user', 'cart', 'prefs', 'cookie', 'added'], 'members keep their order')
  })

  await t.test('patch: values JSON.stringify makes survive the store unchanged', async (t) => {
    const store = await open(t)
    const id = newId()
    const tricky = {
      precise: 1234567890.123456,
      tiny: 5e-324,
      safeMax: Number.MAX_SAFE_INTEGER,
      negZeroish: -0.000001,
      emptyArray: [],
      emptyObject: {},
      nestedEmpty: [[], {}, [{}]],
      text: 'quote " backslash \\ slash / braces {}[] , : newline \n tab \t ü€𝄞 \u2028',
      lone: '\ud800',
      nul: '\u0000',
      bools: [true, false, null]
    }
    await store.set(id, JSON.stringify({ keep: tricky, other: 1 }), 60_000)
    await store.patch!(id, patchOf({ other: tricky, 'we"ird\\ name': tricky, __proto__x: 1 }), 60_000)
    const got = await membersOf(store, id)
    t.same(got?.keep, tricky, 'an untouched member is exactly as stored')
    t.same(got?.other, tricky, 'a patched member is exactly as sent')
    t.same(got?.['we"ird\\ name'], tricky, 'a name that needs escaping works')
    await store.patch!(id, patchOf({}, ['we"ird\\ name']), 60_000)
    t.notOk(Object.hasOwn((await membersOf(store, id)) ?? {}, 'we"ird\\ name'), 'and can be removed')
  })

  await t.test('patch never creates a session: missing, expired, destroyed or invalid ids stay absent', async (t) => {
    const store = await open(t)
    const missing = newId()
    t.equal(await store.patch!(missing, patchOf({ user: 'mallory' }), 60_000), 'missing')
    t.equal(await store.get(missing), null, 'a patch of an unknown id wrote nothing')

    const expired = newId()
    await store.set(expired, '{"user":"alice"}', 200)
    const deadline = Date.now() + 3000
    while (await store.get(expired) !== null && Date.now() < deadline) await sleep(25)
    t.equal(await store.patch!(expired, patchOf({ cart: [1] }), 60_000), 'missing')
    t.equal(await store.get(expired), null, 'an expired session is not brought back by a patch')

    const destroyed = newId()
    await store.set(destroyed, '{"user":"alice"}', 60_000)
    await store.destroy(destroyed)
    t.equal(await store.patch!(destroyed, patchOf({ cart: [1] }), 60_000), 'missing')
    t.equal(await store.get(destroyed), null, 'a destroyed session is not brought back by a patch')
    await store.set(destroyed, '{"user":"alice"}', 60_000)
    t.equal(await store.get(destroyed), null, 'and it is still a tombstone for a whole write')

    await t.rejects(store.patch!('../../etc/passwd', patchOf({ x: 1 }), 60_000), RefusedSessionIdError, 'an invalid id is refused, nothing touched')
  })

  await t.test('the size limit applies to the merged record: over it, nothing is written', async (t) => {
    const store = await open(t)
    const id = newId()
    const stored = JSON.stringify({ big: 'x'.repeat(600) })
    await store.set(id, stored, 60_000)
    // The patch alone is small; with what is stored it is over 1000 bytes.
    await t.rejects(store.patch!(id, patchOf({ more: 'y'.repeat(500) }), 60_000, 1000), SessionTooLargeError, 'refused with SessionTooLargeError (413)')
    t.equal((await store.get(id))?.json, stored, 'the stored session is unchanged')
    t.equal(await store.patch!(id, patchOf({ more: 'y'.repeat(300) }), 60_000, 1000), 'applied', 'a merge that fits is written')
    t.equal(await store.patch!(id, patchOf({ big: 'z'.repeat(1200) }, ['more']), 60_000, 1000 * 10), 'applied', 'a larger limit')
  })

  await t.test('patch gives the record its ttl; a ttl <= 0 removes it', async (t) => {
    const store = await open(t)
    const id = newId()
    await store.set(id, '{"a":1}', 1000)
    const before = Date.now()
    await store.patch!(id, patchOf({ b: 2 }), 60_000)
    const got = await store.get(id)
    t.ok(got !== null && got.expiresAt >= before + 59_000, 'expiresAt moved to now + ttl')
    t.equal(await store.patch!(id, patchOf({ c: 3 }), 0), 'applied')
    t.equal(await store.get(id), null, 'ttl 0 ended the session')
    await store.set(id, '{"a":1}', 60_000)
    t.same(await membersOf(store, id), { a: 1 }, 'no tombstone: the id can be saved again')
  })

  await t.test('patch of a value that is not a JSON object: unreadable, left as it is', async (t) => {
    const store = await open(t)
    for (const junk of ['not json', '[1,2]', '"text"', '{"open":']) {
      const id = newId()
      await store.set(id, junk, 60_000)
      t.equal(await store.patch!(id, patchOf({ a: 1 }), 60_000), 'unreadable', JSON.stringify(junk))
    }
  })

  await t.test('concurrent patches of different members all land', async (t) => {
    const store = await open(t)
    const id = newId()
    await store.set(id, '{"user":"alice"}', 60_000)
    const n = 40
    await Promise.all(Array.from({ length: n }, async (_, i) => await store.patch!(id, patchOf({ [`k${i}`]: i }), 60_000)))
    const got = await membersOf(store, id)
    const missing = Array.from({ length: n }, (_, i) => `k${i}`).filter((k) => got?.[k] === undefined)
    t.same(missing, [], `all ${n} members present`)
    t.equal(got?.user, 'alice', 'the member nobody patched is still there')
  })

  await t.test('interleavings of patch, whole set, destroy, removal and expiry (property test)', async (t) => {
    const store = await open(t)
    const seed = Number(process.env.PATCH_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const random = mulberry32(seed)
    const ids = 8
    const rounds = 20
    for (let lane = 0; lane < ids; lane++) {
      const id = newId()
      let possible: Model[] = [{ state: 'absent', members: {} }]
      for (let round = 0; round < rounds; round++) {
        const expiring = random() < 0.1
        const batch = expiring ? [{ kind: 'expire' } as Op] : randomBatch(random)
        await Promise.all(batch.map(async (op) => await runOp(store, id, op)))
        if (expiring) await waitExpired(store, id)
        possible = dedupe(possible.flatMap((m) => permutations(batch).map((order) => order.reduce(applyOp, m))))
        const got = await store.get(id)
        const actual = got === null ? null : canonical(JSON.parse(got.json))
        const match = possible.filter((m) => (m.state === 'live' ? canonical(m.members) : null) === actual)
        if (match.length === 0) {
          t.fail(`seed ${seed}, id ${lane}, round ${round}: after ${describe(batch)} the store holds ${actual ?? 'nothing'}; ` +
            `possible: ${possible.map((m) => m.state === 'live' ? canonical(m.members) : m.state).join(' | ')}`)
          return
        }
        // What the store holds is now known; only destroyed-or-absent stays ambiguous from outside.
        possible = match
      }
    }
    t.pass(`${ids} ids × ${rounds} concurrent batches matched a serial order (seed ${seed})`)
  })
}

type Op =
  | { kind: 'set', members: Record<string, number> }
  | { kind: 'patch', set: Record<string, number>, unset: string[] }
  | { kind: 'destroy' }
  | { kind: 'remove' }
  | { kind: 'expire' }

interface Model { state: 'absent' | 'live' | 'destroyed', members: Record<string, number> }

const NAMES = ['a', 'b', 'c', 'd']

function randomBatch (random: () => number): Op[] {
  const size = 1 + Math.floor(random() * 4)
  return Array.from({ length: size }, (): Op => {
    const r = random()
    const value = (): number => Math.floor(random() * 100)
    if (r < 0.65) {
      const name = NAMES[Math.floor(random() * NAMES.length)]
      return random() < 0.8 ? { kind: 'patch', set: { [name]: value() }, unset: [] } : { kind: 'patch', set: {}, unset: [name] }
    }
    if (r < 0.9) return { kind: 'set', members: Object.fromEntries(NAMES.filter(() => random() < 0.5).map((n) => [n, value()])) }
    if (r < 0.95) return { kind: 'destroy' }
    return { kind: 'remove' }
  })
}

async function runOp (store: SessionRecordStore, id: string, op: Op): Promise<void> {
  switch (op.kind) {
    case 'set': await store.set(id, JSON.stringify(op.members), 60_000); return
    case 'patch': await store.patch!(id, patchOf(op.set, op.unset), 60_000); return
    case 'destroy': await store.destroy(id); return
    case 'remove': await store.patch!(id, patchOf({}), 0); return
    case 'expire': await store.patch!(id, patchOf({}), 30)
  }
}

async function waitExpired (store: SessionRecordStore, id: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (await store.get(id) !== null && Date.now() < deadline) await sleep(10)
}

/** The store's rules, one operation at a time (stores/types.ts). */
function applyOp (m: Model, op: Op): Model {
  switch (op.kind) {
    case 'set':
      return m.state === 'destroyed' ? m : { state: 'live', members: { ...op.members } }
    case 'patch': {
      if (m.state !== 'live') return m
      const members = { ...m.members, ...op.set }
      for (const n of op.unset) delete members[n]
      return { state: 'live', members }
    }
    case 'destroy':
      // Only a stored session leaves a tombstone.
      return m.state === 'live' ? { state: 'destroyed', members: {} } : m
    case 'remove':
    case 'expire':
      return m.state === 'live' ? { state: 'absent', members: {} } : m
  }
}

function permutations<T> (items: T[]): T[][] {
  if (items.length <= 1) return [items]
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]))
}

function canonical (members: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(members).sort().map((k) => [k, members[k]]))
}

function dedupe (models: Model[]): Model[] {
  const seen = new Map<string, Model>()
  for (const m of models) seen.set(`${m.state}:${canonical(m.members)}`, m)
  return [...seen.values()]
}

function describe (batch: Op[]): string {
  return '[' + batch.map((op) => JSON.stringify(op)).join(', ') + ']'
}

/** A small seeded PRNG: the same seed replays the same operations. */
function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
