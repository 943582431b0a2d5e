/**
 * The shared store contract (test/helpers/store-contract.ts) against a real, private redis-server,
 * twice: with the client the store builds from a URL, and with a user-provided ioredis client that
 * has `keyPrefix: 'app:'` (the usual @fastify/redis / shared-connection setup), where keys must land
 * as `app:sess:<id>` — prefixed once by ioredis, never twice by us.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { privateRedisForFile } from './helpers/redis-server'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import { storeContract } from './helpers/store-contract'

const server = privateRedisForFile(t)

t.test('contract: store with its own client (REDIS_URL)', async (t) => {
  await storeContract(t, async () => {
    const store = new RedisSessionStore({ url: server.redis.url, prefix: `c${Math.random().toString(36).slice(2, 8)}:` })
    await store.connect(3000)
    return { store, cleanup: () => store.close() }
  })
})

t.test('contract: store on a user client with keyPrefix app:', async (t) => {
  const clients: Redis[] = []
  t.teardown(() => { for (const c of clients) c.disconnect() })
  await storeContract(t, async () => {
    const client = new Redis(server.redis.url, { keyPrefix: 'app:' })
    clients.push(client)
    // A fresh store prefix per store isolates the contract's cases (tombstones!) from each other;
    // the exact `app:sess:<id>` layout is checked in the last subtest.
    const store = new RedisSessionStore({ client, prefix: `sess${Math.random().toString(36).slice(2, 8)}:` })
    await store.connect(3000)
    return {
      store,
      cleanup: async () => {
        await store.close()
        t.equal(client.status, 'ready', 'close() leaves the user client open')
        client.disconnect()
      }
    }
  })
})

t.test('keyPrefix app: → keys are app:sess:<id> (checked with a raw client), and all ops agree', async (t) => {
  const client = new Redis(server.redis.url, { keyPrefix: 'app:' })
  t.teardown(() => client.disconnect())
  const store = new RedisSessionStore({ client })
  t.teardown(() => store.close())
  await store.connect(3000)
  const sid = 'KeyPrefixCheckSession0123456789x'

  await store.set(sid, '{"who":"bob"}', 60_000)
  t.same(await server.raw.keys(`*${sid}`), [`app:sess:${sid}`], 'exactly one key, prefixed once by ioredis')
  t.equal((await store.get(sid))?.json, '{"who":"bob"}', 'get reads it back through the prefix')
  await store.touch(sid, 300_000)
  t.ok(await server.raw.pttl(`app:sess:${sid}`) > 200_000, 'touch (Lua KEYS) reaches the prefixed key')
  await store.destroy(sid)
  await store.set(sid, '{"who":"bob"}', 60_000)
  t.equal(await store.get(sid), null, 'tombstone under the prefixed key blocks the stale set')
  t.same(await server.raw.keys(`*${sid}`), [`app:sess:${sid}`], 'still one key: no unprefixed or double-prefixed copy')
})
