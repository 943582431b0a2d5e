/**
 * Redis Cluster over TLS — what managed "cluster mode + in-transit encryption" offerings run: three
 * TLS-only masters (client and cluster-bus traffic encrypted) with certificates from a private CA
 * made with openssl for this run. The store gets REDIS_CLUSTER_NODES and REDIS_CA_FILE only.
 *
 * - With the CA: sessions spread over the masters and read back, through the plugin's boot path.
 * - Without it: the boot connect fails in one line, within the boot timeout, and `auto` falls back to
 *   the file store with one warning instead of hanging or crashing.
 */
import t from 'tap'
import { warningLog } from './helpers/warning-log'
import { failedConnect, startTlsCluster, tlsDbsize, type PrivateTlsCluster } from './helpers/redis-topologies'
import { newSessionId } from './helpers/store-contract'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import { readSessionConfig } from '../lib/sessions/config'
import { openStore } from '../lib/sessions/open-store'

let cluster: PrivateTlsCluster

t.before(async () => {
  cluster = await startTlsCluster(3)
})
t.teardown(async () => { await cluster?.stop() })

const logger = warningLog

t.test('REDIS_CLUSTER_NODES + REDIS_CA_FILE: a working store, sessions on every master', async (t) => {
  const env = { REDIS_CLUSTER_NODES: cluster.env, REDIS_CA_FILE: cluster.caFile, SESSION_STORE: 'redis', NODE_ENV: 'production' }
  const log = logger()
  const opened = await openStore(readSessionConfig({}, env), log)
  t.teardown(() => opened.store.close())
  t.equal(opened.kind, 'redis')
  t.match(opened.reason, /REDIS_CLUSTER_NODES 127\.0\.0\.1:\d+,/)

  const ids = Array.from({ length: 45 }, () => newSessionId())
  await Promise.all(ids.map(async (id, i) => await opened.store.set(id, JSON.stringify({ i }), 60_000)))
  const back = await Promise.all(ids.map(async (id) => (await opened.store.get(id))?.json))
  t.same(back, ids.map((_id, i) => JSON.stringify({ i })), 'every session reads back')
  const perNode = cluster.nodes.map((n) => tlsDbsize(n.port, cluster.caFile))
  t.comment(`sessions per master: ${perNode.join(' / ')}`)
  t.ok(perNode.every((n) => n > 0), 'spread over every master (so every TLS node connection was used)')
  t.equal(perNode.reduce((a, b) => a + b, 0), ids.length, 'each stored once')
  t.equal(await (opened.store as RedisSessionStore).length(), ids.length, 'maintenance ops fan out over the TLS masters too')

  await opened.store.destroy(ids[0])
  t.equal(await opened.store.get(ids[0]), null, 'destroy works')
  t.same(log.lines, [], 'no warnings')
})

t.test('without the CA: one-line boot failure within the boot timeout; auto falls back to files', async (t) => {
  const store = new RedisSessionStore({ clusterNodes: cluster.nodes, url: 'rediss://127.0.0.1' })
  t.teardown(() => store.close())
  const { err, ms } = await failedConnect(store, 3000)
  t.comment(`untrusted certificate: boot failed after ${ms.toFixed(0)} ms: ${err?.message}`)
  t.ok(err instanceof Error, 'rejects')
  t.match(err?.message, /^Session store: Redis at Cluster 127\.0\.0\.1:\d+,.* \(REDIS_CLUSTER_NODES\): TLS certificate not trusted \(.*certificate.*\); accepted: a certificate signed by a CA in REDIS_CA_FILE or the system CAs$/,
    'names the variable and the certificate problem')
  t.notMatch(err?.message ?? '', /\n/, 'one line')
  t.ok(ms < 1500, `at once, not after the 3 s boot timeout: ${ms.toFixed(0)} ms`)

  const config = readSessionConfig({ dir: `${cluster.caFile}.sessions`, bootTimeout: 2000 },
    { REDIS_CLUSTER_NODES: cluster.env, REDIS_URL: 'rediss://127.0.0.1', NODE_ENV: 'production' })
  const log = logger()
  const opened = await openStore(config, log)
  t.teardown(() => opened.store.close())
  t.equal(opened.kind, 'file', 'auto: Redis not usable → the file store')
  t.equal(log.lines.length, 1, 'one warning')
  t.match(log.lines[0], /certificate/, 'that says why')
})
