/**
 * The Redis store on a real 3-master Redis Cluster (redis-cli --cluster create), with the client the
 * store builds from REDIS_CLUSTER_NODES and with a user Cluster client that has a keyPrefix.
 *
 * What the research found broken elsewhere (connect-redis 8 on an ioredis Cluster, L3/L4): length()
 * saw 8–10 of 29 keys (one random node answered SCAN), clear() failed with CROSSSLOT (multi-key
 * DEL), and a client keyPrefix made ids()/length()/clear() see nothing. Here: 60 sessions, spread
 * over the masters, all seen and all removed, with and without a keyPrefix.
 */
import t from 'tap'
import { Cluster } from 'ioredis'
import { startCluster, type PrivateCluster } from './helpers/redis-topologies'
import { storeContract, newSessionId } from './helpers/store-contract'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import { readSessionConfig } from '../lib/sessions/config'
import { selectStore } from '../lib/sessions/select'

let cluster: PrivateCluster

t.before(async () => {
  cluster = await startCluster(3)
})
t.teardown(async () => { await cluster?.stop() })

/** Nodes as the plugin gets them: parsed from REDIS_CLUSTER_NODES by the knob table. */
function nodesFromEnv (): { host: string, port: number }[] {
  const config = readSessionConfig({}, { REDIS_CLUSTER_NODES: cluster.env, NODE_ENV: 'production' })
  if (config.redisClusterNodes === undefined) throw new Error('REDIS_CLUSTER_NODES was not parsed')
  return config.redisClusterNodes
}

t.test('REDIS_CLUSTER_NODES: parsed, selects redis under auto, exclusive with REDIS_SENTINELS', async (t) => {
  const env = { REDIS_CLUSTER_NODES: cluster.env, NODE_ENV: 'production' }
  const config = readSessionConfig({}, env)
  t.same(config.redisClusterNodes, cluster.nodes)
  const sel = selectStore({ store: 'auto', redisClusterNodes: config.redisClusterNodes, sources: config.sources, nodeEnv: 'production' })
  t.equal(sel.kind, 'redis')
  t.equal(sel.fallbackToFile, true)
  t.match(sel.reason, /^auto: REDIS_CLUSTER_NODES 127\.0\.0\.1:\d+,/)
  const both = readSessionConfig({}, { ...env, REDIS_SENTINELS: '127.0.0.1:26379' })
  t.throws(() => selectStore({ store: 'auto', redisClusterNodes: both.redisClusterNodes, redisSentinels: both.redisSentinels, sources: both.sources }),
    { message: 'REDIS_SENTINELS cannot be combined with REDIS_CLUSTER_NODES; accepted: either Sentinel (REDIS_SENTINELS) or Cluster (REDIS_CLUSTER_NODES)' })
})

t.test('contract: store with its own Cluster client (REDIS_CLUSTER_NODES)', async (t) => {
  const nodes = nodesFromEnv()
  await storeContract(t, async () => {
    const store = new RedisSessionStore({ clusterNodes: nodes, prefix: `c${Math.random().toString(36).slice(2, 8)}:` })
    await store.connect(5000)
    t.ok(store.client instanceof Cluster, 'a Cluster client was built')
    return { store, cleanup: () => store.close() }
  })
})

t.test('contract: store on a user Cluster client with keyPrefix app:', async (t) => {
  const clients: Cluster[] = []
  t.teardown(() => { for (const c of clients) c.disconnect() })
  await storeContract(t, async () => {
    const client = new Cluster(cluster.nodes, { keyPrefix: 'app:' })
    clients.push(client)
    const store = new RedisSessionStore({ client, prefix: `s${Math.random().toString(36).slice(2, 8)}:` })
    await store.connect(5000)
    return { store, cleanup: async () => { await store.close(); client.disconnect() } }
  })
})

for (const keyPrefix of ['', 'app[1]:']) {
  t.test(`60 sessions over several masters; ids/length/clear see and remove all (keyPrefix ${JSON.stringify(keyPrefix)})`, async (t) => {
    const user = keyPrefix === '' ? undefined : new Cluster(cluster.nodes, { keyPrefix })
    const store = user === undefined
      ? new RedisSessionStore({ clusterNodes: cluster.nodes, prefix: 'm60:' })
      : new RedisSessionStore({ client: user, prefix: 'm60:' })
    t.teardown(async () => { await store.close(); user?.disconnect() })
    await store.connect(5000)

    const ids = Array.from({ length: 60 }, () => newSessionId())
    for (const id of ids) await store.set(id, JSON.stringify({ id }), 60_000)
    // A destroyed id is a tombstone key: not a session (not in ids/length), but cleared.
    const destroyed = newSessionId()
    await store.set(destroyed, '{}', 60_000)
    await store.destroy(destroyed)

    // Which master holds each key, asked of the masters themselves with the raw key.
    const raw = new Cluster(cluster.nodes)
    t.teardown(() => raw.disconnect())
    await new Promise<void>((resolve) => raw.status === 'ready' ? resolve() : raw.once('ready', () => resolve()))
    const perMaster = await Promise.all(raw.nodes('master').map(async (n) => (await n.keys(`${keyPrefix.replace(/[[\]]/g, '\\$&')}m60:*`)).length))
    t.comment(`keys per master: ${perMaster.join(', ')}`)
    t.ok(perMaster.filter((n) => n > 0).length > 1, `keys landed on more than one master (${perMaster.join(', ')})`)
    t.equal(perMaster.reduce((a, b) => a + b, 0), 61, 'exactly one raw key per session + the tombstone, prefixed once')

    const seen = await store.ids()
    t.same([...seen].sort(), [...ids].sort(), 'ids() sees all 60 live sessions on every master, prefixes stripped, no tombstone')
    t.equal(await store.length(), 60)

    const deleted = await store.clear()
    t.equal(deleted, 61, 'clear() deleted 60 sessions + 1 tombstone, one key at a time (no CROSSSLOT)')
    t.equal(await store.length(), 0)
    for (const id of ids.slice(0, 5)) t.equal(await store.get(id), null)
    const left = await Promise.all(raw.nodes('master').map(async (n) => (await n.keys('*m60:*')).length))
    t.same(left, [0, 0, 0], 'nothing left on any master')
  })
}

t.test('boot connect: the Cluster is ready (slots loaded) within the boot timeout; unreachable nodes fail in one line', async (t) => {
  const store = new RedisSessionStore({ clusterNodes: cluster.nodes })
  t.teardown(() => store.close())
  const started = performance.now()
  await store.connect(5000)
  const ms = performance.now() - started
  t.comment(`cluster boot connect: ${ms.toFixed(1)} ms`)
  t.ok(store.check !== undefined && (await store.check()).ok)

  const dead = new RedisSessionStore({ clusterNodes: [{ host: '127.0.0.1', port: 1 }] })
  t.teardown(() => dead.close())
  const t0 = performance.now()
  const err = await dead.connect(1000).then(() => undefined, (e: Error) => e)
  const took = performance.now() - t0
  t.ok(err instanceof Error, 'rejects')
  t.match(err?.message, /^Session store: Redis at Cluster 127\.0\.0\.1:1 \(REDIS_CLUSTER_NODES\) not ready within 1000 ms/)
  t.notMatch(err?.message ?? '', /\n/, 'one line')
  t.ok(took < 2500, `failed after ${took.toFixed(0)} ms (boot timeout 1000 ms)`)
})
