/**
 * rediss:// against a real TLS-only redis-server whose certificate (IP:127.0.0.1) is signed by a
 * private CA made with openssl for this run (research §3.4 / §9: TLS was never exercised in the lab).
 *
 * - With REDIS_CA_FILE: the store contract holds over TLS, and the plugin's boot path (config →
 *   openStore) reads the CA file once.
 * - Without the CA: the boot connect fails with ONE line that says "certificate", well within the
 *   boot timeout (a certificate error is not retried until the timeout).
 * - A missing CA file, or a CA file with a plain redis:// URL: one-line errors naming REDIS_CA_FILE.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { warningLog } from './helpers/warning-log'
import { failedConnect, startTlsRedis, type PrivateTlsRedis } from './helpers/redis-topologies'
import { storeContract } from './helpers/store-contract'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import { readSessionConfig } from '../lib/sessions/config'
import { openStore } from '../lib/sessions/open-store'

let server: PrivateTlsRedis

t.before(async () => {
  server = await startTlsRedis()
})
t.teardown(async () => { await server?.stop() })

const logger = warningLog

t.test('contract over TLS with the CA (REDIS_CA_FILE content)', async (t) => {
  const ca = readFileSync(server.caFile)
  await storeContract(t, async () => {
    const store = new RedisSessionStore({ url: server.url, ca, prefix: `t${Math.random().toString(36).slice(2, 8)}:` })
    await store.connect(5000)
    return { store, cleanup: () => store.close() }
  })
})

t.test('plugin boot path: REDIS_URL=rediss:// + REDIS_CA_FILE → a working Redis store', async (t) => {
  const env = { REDIS_URL: server.url, REDIS_CA_FILE: server.caFile, SESSION_STORE: 'redis', NODE_ENV: 'production' }
  const config = readSessionConfig({}, env)
  t.equal(config.redisCaFile, server.caFile)
  const log = logger()
  const opened = await openStore(config, log)
  t.teardown(() => opened.store.close())
  t.equal(opened.kind, 'redis')
  t.match(opened.reason, /^SESSION_STORE=redis \(REDIS_URL rediss:\/\/127\.0\.0\.1:\d+\)$/)
  await opened.store.set('TlsBootPathSession0123456789abcd', '{"tls":true}', 60_000)
  t.equal((await opened.store.get('TlsBootPathSession0123456789abcd'))?.json, '{"tls":true}')
  t.same(log.lines, [], 'no warnings')
})

t.test('without the CA: the boot connect fails in one line naming the certificate problem, within the boot timeout', async (t) => {
  const store = new RedisSessionStore({ url: server.url })
  t.teardown(() => store.close())
  const { err, ms } = await failedConnect(store, 3000)
  t.comment(`untrusted certificate: boot failed after ${ms.toFixed(0)} ms: ${err?.message}`)
  t.ok(err instanceof Error, 'rejects')
  t.match(err?.message, /^Session store: Redis at rediss:\/\/127\.0\.0\.1:\d+ \(REDIS_URL\): TLS certificate not trusted \(.*certificate.*\); accepted: a certificate signed by a CA in REDIS_CA_FILE or the system CAs$/)
  t.notMatch(err?.message ?? '', /\n/, 'one line')
  t.ok(ms < 3000 + 500, `within the boot timeout (+500 ms slack): ${ms.toFixed(0)} ms`)

  // The same through the plugin's path with auto: Redis "unreachable" → file fallback + one warning.
  const config = readSessionConfig({ dir: server.dir + '/sessions', bootTimeout: 2000 }, { REDIS_URL: server.url, NODE_ENV: 'production' })
  const log = logger()
  const opened = await openStore(config, log)
  t.teardown(() => opened.store.close())
  t.equal(opened.kind, 'file')
  t.equal(log.lines.length, 1, 'one warning')
  t.match(log.lines[0], /certificate/)
})

t.test('REDIS_CA_FILE errors are one line naming the variable', async (t) => {
  const missing = readSessionConfig({}, { REDIS_URL: server.url, REDIS_CA_FILE: '/nonexistent/ca.pem', SESSION_STORE: 'redis' })
  await t.rejects(openStore(missing, logger()), {
    message: 'REDIS_CA_FILE=/nonexistent/ca.pem cannot be read (ENOENT); accepted: a readable PEM file of the CA that signed the Redis certificate'
  })
  // auto does not fall back on a configuration error.
  const auto = readSessionConfig({}, { REDIS_URL: server.url, PRODSERVER_REDIS_CA_FILE: '/nonexistent/ca.pem', NODE_ENV: 'production' })
  await t.rejects(openStore(auto, logger()), { message: /^PRODSERVER_REDIS_CA_FILE=\/nonexistent\/ca\.pem cannot be read \(ENOENT\)/ })
  const notPem = readSessionConfig({}, { REDIS_URL: server.url, REDIS_CA_FILE: server.dir + '/ext.cnf', SESSION_STORE: 'redis' })
  await t.rejects(openStore(notPem, logger()), { message: /^REDIS_CA_FILE=.*ext\.cnf holds no PEM certificate; accepted: / })
  const plain = readSessionConfig({}, { REDIS_URL: 'redis://127.0.0.1:6399', REDIS_CA_FILE: server.caFile, SESSION_STORE: 'redis' })
  await t.rejects(openStore(plain, logger()), { message: /^REDIS_CA_FILE needs TLS but REDIS_URL is redis:\/\/127\.0\.0\.1:6399; accepted: a rediss:\/\/ URL/ })
})

t.test('maintenance ops on a single node with a user client keyPrefix (over TLS): ids/length/clear honour it', async (t) => {
  const { Redis } = await import('ioredis')
  const client = new Redis(server.url, { tls: { ca: readFileSync(server.caFile) }, keyPrefix: 'app:' })
  t.teardown(() => client.disconnect())
  const store = new RedisSessionStore({ client, prefix: 'mt:' })
  t.teardown(() => store.close())
  await store.connect(5000)
  const ids = ['MaintSessionAAAAAAAAAAAAAAAAAAAA', 'MaintSessionBBBBBBBBBBBBBBBBBBBB', 'MaintSessionCCCCCCCCCCCCCCCCCCCC']
  for (const id of ids) await store.set(id, '{}', 60_000)
  await store.destroy(ids[2])
  t.same((await store.ids()).sort(), ids.slice(0, 2), 'the keyPrefix is in MATCH and stripped from results; tombstone excluded')
  t.equal(await store.length(), 2)
  t.equal(await store.clear(), 3, 'sessions + tombstone deleted')
  t.equal(await store.length(), 0)
})
