/**
 * MemorySessionStore specifics: the bound (`max`, LRU, one warning), data held as JSON text
 * (pitfall 15: @fastify/session's MemoryStore keeps live references), tombstone lapse, and the
 * refuse/warn rule the sessions plugin applies. The shared contract is in store-contract-memory.test.ts.
 */
import t from 'tap'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import { newSessionId } from './helpers/store-contract'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('at most max sessions; the least recently used go first, with one warning', async (t) => {
  const warnings: string[] = []
  const store = new MemorySessionStore({ max: 3, log: { warn: (m) => warnings.push(m) } })
  const [a, b, c, d, e] = Array.from({ length: 5 }, () => newSessionId())
  await store.set(a, '{"a":1}', 60_000)
  await store.set(b, '{"b":1}', 60_000)
  await store.set(c, '{"c":1}', 60_000)
  t.not(await store.get(a), null, 'a read makes a recently used')
  await store.set(d, '{"d":1}', 60_000)
  await store.set(e, '{"e":1}', 60_000)
  t.equal(await store.get(b), null, 'b (least recently used) dropped')
  t.equal(await store.get(c), null, 'then c')
  t.equal((await store.get(a))?.json, '{"a":1}', 'a, read recently, kept')
  t.equal(store.size, 3, 'size stays at max')
  t.equal(warnings.length, 1, 'one warning, not one per eviction')
  t.match(warnings[0], /full \(max 3\)/)
})

t.test('memory stays bounded under many sessions', async (t) => {
  const store = new MemorySessionStore({ max: 1000 })
  for (let i = 0; i < 20_000; i++) await store.set(newSessionId(), '{"n":1}', 60_000)
  t.equal(store.size, 1000, '20000 sets, 1000 kept')
})

t.test('data is held as text: a handler mutating what it loaded does not change the store', async (t) => {
  const store = new MemorySessionStore()
  const id = newSessionId()
  await store.set(id, JSON.stringify({ cart: [1] }), 60_000)
  const loaded = JSON.parse((await store.get(id))!.json) as { cart: number[] }
  loaded.cart.push(2)
  t.same(JSON.parse((await store.get(id))!.json), { cart: [1] }, 'stored session unchanged until set')
  await t.rejects(store.set(id, { cart: [3] } as unknown as string, 60_000), TypeError, 'an object instead of JSON text is refused, not stored by reference')
})

t.test('a tombstone lapses after tombstoneMs', async (t) => {
  const store = new MemorySessionStore({ tombstoneMs: 200 })
  const id = newSessionId()
  await store.set(id, '{"a":0}', 60_000)
  await store.destroy(id) // a logout of a stored session leaves the tombstone
  await store.set(id, '{"a":1}', 60_000)
  t.equal(await store.get(id), null, 'refused while the tombstone lives')
  await sleep(350)
  await store.set(id, '{"a":2}', 60_000)
  t.equal((await store.get(id))?.json, '{"a":2}', 'accepted after it lapsed')
})

t.test('invalid max is a clear error', async (t) => {
  t.throws(() => new MemorySessionStore({ max: 0 }), /max must be a positive integer/)
})
