/**
 * What connect-redis 8's own test suite checks of a Redis session store, checked of ours — through
 * a thin adapter with connect-redis's API (fixtures/connect-redis-adapter.ts), with each client a
 * user may bring (ioredis 5, ioredis 6, node-redis 5), against a private redis-server: defaults,
 * get/set/touch/destroy with short ids, a lifetime taken from `cookie.expires` (or `ttl`), a
 * lifetime already over deleting the session, length/ids/all/clear over 1000 sessions, the prefix,
 * callbacks as well as promises; plus where ours differs on purpose (a destroyed id stays
 * destroyed). connect-redis 8.1's suite itself through the same adapter: see the README.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { createClient } from 'redis'
import { RedisStore } from 'connect-redis'
import { privateRedisForFile } from './helpers/redis-server'
import { ConnectRedisAdapter } from './fixtures/connect-redis-adapter'

const shared = privateRedisForFile(t)

type Made = { client: unknown, close: () => unknown }

const CLIENTS: Record<string, (url: string) => Promise<Made>> = {
  'ioredis 5': async (url) => {
    const client = new Redis(url)
    return { client, close: () => client.disconnect() }
  },
  'ioredis 6': async (url) => {
    const client = new Redis6(url)
    return { client, close: () => client.disconnect() }
  },
  'node-redis 5': async (url) => {
    const client = createClient({ url })
    client.on('error', () => {})
    await client.connect()
    return { client, close: () => { if (client.isOpen) client.destroy() } }
  }
}

/** A prefix of its own per test, so counts see only that test's keys. */
let prefixes = 0
const freshPrefix = (): string => `cr${++prefixes}:`

async function until (what: string, check: () => Promise<boolean>, limitMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const inSeconds = (s: number): Date => new Date(Date.now() + s * 1000)

for (const [name, make] of Object.entries(CLIENTS)) {
  t.test(name, async (t) => {
    const made = await make(shared.redis.url)
    t.teardown(() => made.close())
    const storeWith = (opts: Partial<ConstructorParameters<typeof ConnectRedisAdapter>[0]> = {}): ConnectRedisAdapter =>
      new ConnectRedisAdapter({ client: made.client, prefix: freshPrefix(), ...opts })

    t.test('connect-redis\'s defaults; options it has that we cannot honour are refused', async (t) => {
      const store = new ConnectRedisAdapter({ client: made.client })
      t.equal(store.client, made.client)
      t.equal(store.prefix, 'sess:')
      t.equal(store.ttl, 86400, 'one day, in seconds')
      t.equal(store.scanCount, 100)
      t.equal(store.serializer, JSON)
      t.equal(store.disableTouch, false)
      t.equal(store.disableTTL, false)
      t.throws(() => new ConnectRedisAdapter({ client: made.client, serializer: { parse: JSON.parse, stringify: JSON.stringify } }), /option serializer is refused; accepted: JSON/)
      t.throws(() => new ConnectRedisAdapter({ client: made.client, disableTTL: true }), /option disableTTL is refused/)
    })

    t.test('short ids: set, get, touch, destroy; the lifetime from cookie.expires or ttl', async (t) => {
      const store = storeWith()
      const raw = shared.raw
      const sess = { foo: 'bar', cookie: { originalMaxAge: null } }
      await store.set('123', sess)
      t.same(await store.get('123'), sess, 'a three-character id round-trips')
      t.ok(await raw.pttl(`${store.prefix}123`) > 86_398_000, 'no expires: ttl (one day)')

      await store.set('456', { cookie: { originalMaxAge: null, expires: inSeconds(60) } })
      const pttl = await raw.pttl(`${store.prefix}456`)
      t.ok(pttl <= 60_000 && pttl > 55_000, `cookie.expires in 60 s: the key lives that long (${pttl} ms)`)
      await store.touch('456', { cookie: { originalMaxAge: null, expires: inSeconds(90) } })
      t.ok(await raw.pttl(`${store.prefix}456`) > 60_000, 'touch moves it to the new expires')
      await store.touch('never-set', { cookie: { expires: inSeconds(90) } })
      t.equal(await raw.exists(`${store.prefix}never-set`), 0, 'touch never creates a session')

      t.equal(await store.length(), 2)
      t.same((await store.ids()).sort(), ['123', '456'])
      const all = (await store.all()).sort((a, b) => a.id > b.id ? 1 : -1)
      t.same(all, [{ id: '123', foo: 'bar', cookie: { originalMaxAge: null } }, { id: '456', cookie: { originalMaxAge: null, expires: all[1]?.cookie?.expires } }])
      t.type(all[1]?.cookie?.expires, 'string', 'all() gives the stored JSON: expires as an ISO string')

      await store.destroy('456')
      t.equal(await store.get('456'), null, 'destroyed')
      t.equal(await store.length(), 1, 'one session left')
      await store.set('456', { cookie: { originalMaxAge: null, expires: inSeconds(60) } })
      t.equal(await store.get('456'), null, 'unlike connect-redis, a late save of a destroyed id does not bring it back (tombstone)')
      t.equal(await store.length(), 1, 'and the tombstone is not counted')

      await store.clear()
      t.equal(await store.length(), 0)
      t.same(await raw.keys(`${store.prefix}*`), [], 'clear removes tombstones too')
    })

    t.test('1000 sessions: length, ids, clear; then Redis expires them on time', async (t) => {
      const store = storeWith()
      const cookie = { originalMaxAge: null, expires: inSeconds(600) }
      for (let i = 0; i < 1000; i++) await store.set(`s${i}`, { cookie })
      t.equal(await store.length(), 1000, 'length counts them all (several SCAN pages of 100)')
      t.equal(new Set(await store.ids()).size, 1000)
      await store.clear()
      t.equal(await store.length(), 0)

      const soon = { originalMaxAge: null, expires: new Date(Date.now() + 300) }
      for (let i = 0; i < 20; i++) await store.set(`x${i}`, { cookie: soon })
      await until('the sessions to expire', async () => await store.length() === 0)
      t.ok(Date.now() >= soon.expires.getTime(), 'gone once their cookie.expires passed, not before')
    })

    t.test('a lifetime already over deletes the session', async (t) => {
      const store = storeWith()
      await store.set('789', { cookie: { originalMaxAge: null, expires: inSeconds(90) } })
      t.equal(await store.length(), 1)
      await store.set('789', { cookie: { originalMaxAge: null, expires: inSeconds(-90) } })
      t.equal(await store.length(), 0, 'no key remains')
      t.equal(await shared.raw.exists(`${store.prefix}789`), 0)
    })

    t.test('the prefix: keys are prefix + id, other prefixes are not counted, glob characters are literal', async (t) => {
      const a = storeWith({ prefix: 'app[1]*:' })
      const b = storeWith({ prefix: 'app1x:' })
      await a.set('u1', { n: 1 })
      await b.set('u2', { n: 2 })
      t.equal(await shared.raw.get('app[1]*:u1'), '{"n":1}', 'the value is the session JSON under prefix + id')
      t.same(await a.ids(), ['u1'], 'a prefix with [ ] * is matched literally, not as a pattern')
      t.same(await b.ids(), ['u2'])
      await a.clear()
      t.equal(await b.length(), 1, 'clear leaves other prefixes alone')
      await b.clear()
    })

    t.test('callbacks as well as promises; an id we refuse is an error, not a silent miss', async (t) => {
      const store = storeWith()
      await new Promise<void>((resolve, reject) => { void store.set('cb', { v: 1 }, (err) => { if (err !== null && err !== undefined) reject(err); else resolve() }) })
      const got = await new Promise((resolve, reject) => { void store.get('cb', (err, value) => { if (err !== null && err !== undefined) reject(err); else resolve(value) }) })
      t.same(got, { v: 1 })
      const refused = await new Promise((resolve) => { void store.get('../etc/passwd', (err) => resolve(err)) })
      t.match(String(refused), /session id/i, 'the callback gets the error')
      await t.rejects(store.set('a b', { v: 1 }), 'and without a callback the promise rejects')
      await store.clear()
    })

    if (name.startsWith('ioredis')) {
      t.test('connect-redis itself reads and writes the same keys', async (t) => {
        const prefix = freshPrefix()
        const ours = storeWith({ prefix })
        const theirs = new RedisStore({ client: made.client, prefix })
        await ours.set('shared1', { user: 'alice', cookie: { originalMaxAge: null } })
        t.same(await theirs.get('shared1'), { user: 'alice', cookie: { originalMaxAge: null } }, 'connect-redis reads ours')
        await theirs.set('shared2', { user: 'bob', cookie: { originalMaxAge: null } } as any)
        t.same(await ours.get('shared2'), { user: 'bob', cookie: { originalMaxAge: null } }, 'we read connect-redis\'s')
        await ours.destroy('shared1')
        t.equal(await theirs.get('shared1'), null, 'a session we destroyed reads as none to connect-redis')
        await ours.clear()
      })
    }
  })
}
