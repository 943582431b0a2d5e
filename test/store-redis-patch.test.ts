/**
 * The Redis store's patch script (lib/sessions/stores/redis/patch.ts) on a real, private
 * redis-server: it splices the JSON text, so members no request touched stay byte for byte as
 * stored — where a cjson decode/encode inside Redis would have rewritten them (shown here on the
 * same server) — and the key keeps a plain JSON object that connect-redis (rollback) reads.
 * The patch semantics themselves are in the shared contract (test/helpers/store-patch-contract.ts),
 * run on single Redis, Sentinel and Cluster with ioredis and node-redis.
 */
import t from 'tap'
import { RedisStore } from 'connect-redis'
import { privateRedisForFile } from './helpers/redis-server'
import { newSessionId } from './helpers/store-contract'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import type { SessionPatch } from '../lib/sessions/stores/types'

const server = privateRedisForFile(t)

const patchOf = (set: Record<string, unknown>, unset: string[] = []): SessionPatch =>
  ({ set: Object.entries(set).map(([k, v]) => [k, JSON.stringify(v)] as const), unset })

async function storeFor (t: Parameters<Parameters<typeof t.test>[1]>[0]): Promise<RedisSessionStore> {
  const store = new RedisSessionStore({ url: server.redis.url })
  t.teardown(() => store.close())
  await store.connect(3000)
  return store
}

t.test('untouched members keep their exact text; cjson would have changed them', async (t) => {
  const store = await storeFor(t)
  const id = newSessionId()
  const members = [
    '"precise": 1234567890.123456',
    '"big":12345678901234567890',
    '"emptyList" :[]',
    '"emptyObject":{ }',
    '"nested":{"a":[1,{"b":"}],\\"["}],"c":null}',
    '"text":"brace } bracket ] comma , quote \\" backslash \\\\"',
    '"padded":  1.50  '
  ]
  await server.raw.set(`sess:${id}`, `{ ${members.join(' ,\n ')} }`, 'PX', 60_000)
  t.equal(await store.patch(id, patchOf({ added: true }), 60_000), 'applied')
  t.equal(await server.raw.get(`sess:${id}`),
    '{"precise":1234567890.123456,"big":12345678901234567890,"emptyList":[],"emptyObject":{ },' +
    '"nested":{"a":[1,{"b":"}],\\"["}],"c":null},"text":"brace } bracket ] comma , quote \\" backslash \\\\","padded":1.50,"added":true}',
    'every value byte for byte; only the separators between members are rewritten')

  const viaCjson = await server.raw.eval('return cjson.encode(cjson.decode(ARGV[1]))', 0, '{"precise":1234567890.123456,"big":12345678901234567890,"emptyList":[]}') as string
  t.notMatch(viaCjson, /1234567890\.123456/, `cjson rounds numbers to 14 digits (${viaCjson})`)
  t.notMatch(viaCjson, /"emptyList":\[\]/, 'and turns [] into {}')
})

t.test('names are matched decoded: an escaped stored name is replaced, not duplicated', async (t) => {
  const store = await storeFor(t)
  const id = newSessionId()
  await server.raw.set(`sess:${id}`, '{"c\\u0061rt":[1],"we\\"ird":1,"dup":1,"dup":2}', 'PX', 60_000)
  await store.patch(id, patchOf({ cart: [1, 2], dup: 3 }, ['we"ird']), 60_000)
  const text = await server.raw.get(`sess:${id}`) as string
  t.same(JSON.parse(text), { cart: [1, 2], dup: 3 })
  t.equal(text.match(/dup/g)?.length, 1, 'a duplicated stored name ends as one member')
  t.equal(text.match(/c(a|\\u0061)rt/g)?.length, 1, 'one cart')
})

t.test('connect-redis reads a patched session (rollback) and we patch what it wrote (migration)', async (t) => {
  const store = await storeFor(t)
  const legacy = new RedisStore({ client: server.raw })
  const id = newSessionId()
  const cookie = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000).toISOString(), httpOnly: true, path: '/' }
  await new Promise<void>((resolve, reject) => { legacy.set(id, { cookie, user: 'alice', cart: [1] } as any, (err) => err ? reject(err) : resolve()) })
  await Promise.all([
    store.patch(id, patchOf({ cart: [1, 2] }), 60_000),
    store.patch(id, patchOf({ prefs: { theme: 'dark' } }), 60_000)
  ])
  const back = await new Promise<any>((resolve, reject) => { legacy.get(id, (err, s) => err ? reject(err) : resolve(s)) })
  t.same(back, { cookie, user: 'alice', cart: [1, 2], prefs: { theme: 'dark' } }, 'connect-redis gets the merged session')
  t.ok(await server.raw.pttl(`sess:${id}`) > 50_000, 'with its lifetime')
})

t.test('one round trip per save: the patch is a single EVALSHA (MONITOR)', async (t) => {
  const store = await storeFor(t)
  const id = newSessionId()
  await store.set(id, '{"user":"alice"}', 60_000)
  await store.patch(id, patchOf({ warm: 1 }), 60_000) // loads the script (NOSCRIPT fallback) once
  const watcher = server.raw.duplicate()
  t.teardown(() => watcher.disconnect())
  const monitor = await watcher.monitor()
  t.teardown(() => monitor.disconnect())
  const seen: string[] = []
  let markerSeen!: () => void
  const marker = new Promise<void>((resolve) => { markerSeen = resolve })
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args.includes(`marker:${id}`)) markerSeen()
    else if (args.includes(`sess:${id}`)) seen.push(`${source === 'lua' ? 'lua' : 'client'} ${args[0].toLowerCase()}`)
  })
  await store.patch(id, patchOf({ cart: [1] }), 60_000)
  // MONITOR lists commands in the order they ran: once this one shows, the patch's have.
  await server.raw.set(`marker:${id}`, '1')
  await marker
  t.same(seen.filter((l) => l.startsWith('client')), ['client evalsha'], `one command from the client (${seen.join(', ')})`)
})
