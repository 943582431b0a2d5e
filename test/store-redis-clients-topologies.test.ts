/**
 * Redis Cluster and Sentinel with the clients users bring: node-redis 5 (createCluster,
 * createSentinel) and ioredis 6 (Cluster, Sentinel mode), on real private topologies
 * (test/helpers/redis-topologies.ts). Where the seam differs per client: the Cluster's maintenance
 * ops must fan out over every master (node-redis: `masters` + `nodeClient`; ioredis 6: `nodes`,
 * recognised by shape, not instanceof our ioredis 5), every script is routed by its key, and behind
 * Sentinel every command goes to the master — through a failover too.
 */
import t from 'tap'
import { createCluster, createSentinel } from 'redis'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis6'
import { Redis } from 'ioredis'
import { startCluster, startSentinelGroup, waitFor, sleep, type PrivateCluster, type PrivateSentinelGroup } from './helpers/redis-topologies'
import { storeContract, newSessionId } from './helpers/store-contract'
import { RedisSessionStore, type RedisClient } from '../lib/sessions/stores/redis'
import { steadyLoad } from './helpers/store-load'

let cluster: PrivateCluster
let group: PrivateSentinelGroup

t.before(async () => {
  cluster = await startCluster(3)
  group = await startSentinelGroup('mymaster')
})
t.teardown(async () => { await cluster?.stop(); await group?.stop() })

type Made = { client: RedisClient, close: () => Promise<void> | void }

const CLUSTER_CLIENTS: Record<string, () => Promise<Made>> = {
  'node-redis 5 cluster': async () => {
    const client = createCluster({ rootNodes: cluster.nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })) })
    client.on('error', () => {})
    await client.connect()
    return { client: client as unknown as RedisClient, close: () => client.destroy() }
  },
  'ioredis 6 Cluster': async () => {
    const client = new Cluster6(cluster.nodes)
    client.on('error', () => {})
    await new Promise<void>((resolve) => client.status === 'ready' ? resolve() : client.once('ready', () => resolve()))
    return { client: client as unknown as RedisClient, close: () => client.disconnect() }
  }
}

for (const [name, make] of Object.entries(CLUSTER_CLIENTS)) {
  t.test(name, async (t) => {
    t.test('store contract', async (t) => {
      await storeContract(t, async () => {
        const made = await make()
        const store = new RedisSessionStore({ client: made.client, prefix: `c${Math.random().toString(36).slice(2, 8)}:` })
        await store.connect(5000)
        return { store, cleanup: async () => { await store.close(); await made.close() } }
      })
    })

    t.test('60 sessions over the masters: ids/length/clear see and remove all (no CROSSSLOT)', async (t) => {
      const made = await make()
      t.teardown(() => made.close())
      const prefix = `m${Math.random().toString(36).slice(2, 8)}:`
      const store = new RedisSessionStore({ client: made.client, prefix })
      t.teardown(() => store.close())
      await store.connect(5000)
      const ids = Array.from({ length: 60 }, () => newSessionId())
      for (const id of ids) await store.set(id, JSON.stringify({ id }), 60_000)
      const gone = newSessionId()
      await store.set(gone, '{}', 60_000)
      await store.destroy(gone)

      const perMaster = await Promise.all(cluster.nodes.map(async (n) => {
        const raw = new Redis(n.port, n.host)
        try { return (await raw.keys(`${prefix}*`)).length } finally { raw.disconnect() }
      }))
      t.ok(perMaster.filter((n) => n > 0).length > 1, `keys on more than one master (${perMaster.join(', ')})`)
      t.same([...await store.ids()].sort(), [...ids].sort(), 'ids() sees the 60 live sessions on every master')
      t.equal(await store.length(), 60)
      t.equal(await store.clear(), 61, 'clear() removes 60 sessions and the tombstone')
      t.equal(await store.length(), 0)
    })
  })
}

t.test('ioredis 6 through Sentinel: store contract', async (t) => {
  await storeContract(t, async () => {
    const client = new Redis6({ sentinels: group.sentinels, name: group.name })
    client.on('error', () => {})
    const store = new RedisSessionStore({ client: client as unknown as RedisClient, prefix: `s6${Math.random().toString(36).slice(2, 8)}:` })
    await store.connect(5000)
    return { store, cleanup: async () => { await store.close(); client.disconnect() } }
  })
})

t.test('node-redis 5 sentinel: store contract, maintenance on the master, and a failover', async (t) => {
  const made = async (): Promise<Made> => {
    const client = createSentinel({ name: group.name, sentinelRootNodes: group.sentinels })
    client.on('error', () => {})
    await client.connect()
    return { client: client as unknown as RedisClient, close: () => client.destroy() }
  }
  await t.test('store contract', async (t) => {
    await storeContract(t, async () => {
      const m = await made()
      const store = new RedisSessionStore({ client: m.client, prefix: `sn${Math.random().toString(36).slice(2, 8)}:` })
      await store.connect(5000)
      return { store, cleanup: async () => { await store.close(); await m.close() } }
    })
  })

  await t.test('failover (master SIGKILLed): every op succeeds or 503s within the bound; sessions survive', async (t) => {
    const m = await made()
    t.teardown(() => m.close())
    const timeoutMs = 500
    const store = new RedisSessionStore({ client: m.client, timeoutMs, breakerCooldownMs: 200, prefix: 'fo:' })
    t.teardown(() => store.close())
    await store.connect(5000)
    const before = Array.from({ length: 10 }, () => newSessionId())
    for (const id of before) await store.set(id, JSON.stringify({ id }), 120_000)
    const oldMaster = group.masterPort()
    const raw = new Redis(oldMaster, '127.0.0.1')
    t.equal(await raw.wait(1, 2000), 1, 'the replica acknowledged the writes')
    raw.disconnect()
    t.same([...await store.ids()].sort(), [...before].sort(), 'ids() on the master behind Sentinel')

    const load = steadyLoad(store, 2)
    await sleep(300)
    await group.killMaster()
    await waitFor(() => group.masterPort() !== oldMaster, 20_000, 'sentinels report a new master')
    await waitFor(async () => {
      try { await store.set(newSessionId(), '{}', 10_000); return true } catch { return false }
    }, 20_000, 'the store writes again through the node-redis sentinel')
    const okAfterRecovery = load.counts.ok
    await sleep(500)
    await load.stop()
    const { counts } = load
    t.comment(`load: ok=${counts.ok} unavailable(503)=${counts.unavailable} slowest set+get=${counts.slowestMs.toFixed(0)} ms`)
    t.same(counts.other, [], 'only successes and 503s')
    t.ok(counts.slowestMs < 2 * timeoutMs + 1500, `no op waited past its bound (${counts.slowestMs.toFixed(0)} ms)`)
    t.ok(counts.ok > okAfterRecovery, 'the load succeeds again on the new master')
    for (const id of before) t.equal((await store.get(id))?.json, JSON.stringify({ id }), 'written before the failover, read after it')
  })
})
