/**
 * Sentinel with TLS everywhere — data nodes, replication and the sentinels themselves TLS-only,
 * certificates from a private CA made with openssl for this run. The store gets REDIS_SENTINELS and
 * REDIS_CA_FILE: it asks the sentinels over TLS, reaches the master over TLS, and follows a failover.
 */
import t from 'tap'
import { startSentinelGroup, waitFor, failedConnect, type PrivateSentinelGroup } from './helpers/redis-topologies'
import { newSessionId } from './helpers/store-contract'
import { warningLog } from './helpers/warning-log'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import { readSessionConfig } from '../lib/sessions/config'
import { openStore } from '../lib/sessions/open-store'

let group: PrivateSentinelGroup

t.before(async () => {
  group = await startSentinelGroup('tlsmaster', { tls: true })
})
t.teardown(async () => { await group?.stop() })

t.test('REDIS_SENTINELS + REDIS_CA_FILE: sessions through TLS sentinels, and they survive a failover', async (t) => {
  const env = {
    REDIS_SENTINELS: group.env, REDIS_SENTINEL_NAME: group.name, REDIS_CA_FILE: group.caFile as string,
    SESSION_STORE: 'redis', NODE_ENV: 'production', SESSION_REDIS_TIMEOUT: '500'
  }
  const log = warningLog()
  const opened = await openStore(readSessionConfig({}, env), log)
  t.teardown(() => opened.store.close())
  t.equal(opened.kind, 'redis')

  const ids = Array.from({ length: 10 }, () => newSessionId())
  for (const [i, id] of ids.entries()) await opened.store.set(id, JSON.stringify({ i }), 60_000)
  t.same(await Promise.all(ids.map(async (id) => (await opened.store.get(id))?.json)), ids.map((_id, i) => JSON.stringify({ i })), 'written and read over TLS')
  t.same(log.lines, [], 'no warnings')

  const killed = await group.killMaster()
  const started = Date.now()
  const probe = newSessionId()
  await waitFor(async () => { await opened.store.set(probe, '{"after":true}', 60_000); return true }, 20_000, 'writes again after the failover')
  t.comment(`master on ${killed} killed; writes again after ${Date.now() - started} ms, new master on ${group.masterPort()}`)
  t.not(group.masterPort(), killed, 'a replica was promoted')
  t.same(await Promise.all(ids.map(async (id) => (await opened.store.get(id))?.json)), ids.map((_id, i) => JSON.stringify({ i })),
    'sessions written before the failover are still there')
})

t.test('without the CA: the boot fails in one line naming the sentinels and the certificate problem', async (t) => {
  const store = new RedisSessionStore({ sentinels: group.sentinels, sentinelName: group.name, url: 'rediss://127.0.0.1' })
  t.teardown(() => store.close())
  const { err, ms } = await failedConnect(store, 3000)
  t.comment(`untrusted certificate: boot failed after ${ms.toFixed(0)} ms: ${err?.message}`)
  t.ok(err instanceof Error, 'rejects')
  t.match(err?.message, /\(REDIS_SENTINELS\)/, 'names the variable')
  t.match(err?.message, /certificate/, 'and the certificate problem')
  t.notMatch(err?.message ?? '', /\n/, 'one line')
  t.ok(ms < 1500, `at once, not after the 3 s boot timeout: ${ms.toFixed(0)} ms`)
})
