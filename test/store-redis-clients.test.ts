/**
 * The Redis store on the clients users bring, next to the ioredis 5 client we build: node-redis 5
 * (`redis`: createClient) and ioredis 6 (RESP3 by default), each against a private redis-server.
 * The store contract, the maintenance ops (ids/length/clear), the guarantees that depend on the
 * client (every operation bounded on a frozen or dead server, the circuit breaker, a Redis error
 * reply not mistaken for an outage), and the plugin end to end with `redisClient`.
 * Cluster and Sentinel with these clients: test/store-redis-clients-topologies.test.ts.
 */
import t, { type Test } from 'tap'
import { createClient } from 'redis'
import { Redis as Redis6 } from 'ioredis6'
import { privateRedisForFile, startRedis, type PrivateRedis } from './helpers/redis-server'
import { storeContract, newSessionId } from './helpers/store-contract'
import { RedisSessionStore, CircuitOpenError, type RedisClient } from '../lib/sessions/stores/redis'
import { StoreUnavailableError } from '../lib/sessions/errors'
import { CLEAN_ENV, Client, SECRET_A, registerError, startApp, withEnv } from './fixtures/sessions-helpers'

const shared = privateRedisForFile(t)
const SLACK_MS = 1500 // 2 shared cores: generous, yet far below the hangs this guards against

type Made = { client: RedisClient, close: () => Promise<void> | void, ready: () => boolean }

/** The clients under test, connected the way their READMEs show. */
const CLIENTS: Record<string, (url: string, opts?: { forever?: boolean }) => Promise<Made>> = {
  'node-redis 5': async (url, opts) => {
    // forever: node-redis's default already queues commands while reconnecting, unbounded.
    const client = createClient({ url, socket: { reconnectStrategy: (n: number) => Math.min(50 * n, 500) }, ...(opts?.forever === true ? {} : {}) })
    client.on('error', () => {})
    await client.connect()
    return { client: client as unknown as RedisClient, close: async () => { if (client.isOpen) client.destroy() }, ready: () => client.isReady }
  },
  'ioredis 6': async (url, opts) => {
    const client = new Redis6(url, opts?.forever === true ? { maxRetriesPerRequest: null, retryStrategy: () => 100 } : {})
    client.on('error', () => {})
    await new Promise<void>((resolve) => client.status === 'ready' ? resolve() : client.once('ready', () => resolve()))
    return { client: client as unknown as RedisClient, close: () => client.disconnect(), ready: () => client.status === 'ready' }
  }
}

async function serverFor (t: Test): Promise<PrivateRedis> {
  const r = await startRedis()
  t.teardown(() => r.stop())
  return r
}

async function timed (fn: () => Promise<unknown>): Promise<{ ms: number, err?: unknown }> {
  const started = performance.now()
  try {
    await fn()
    return { ms: performance.now() - started }
  } catch (err) {
    return { ms: performance.now() - started, err }
  }
}

async function untilOk (fn: () => Promise<unknown>, limitMs: number): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < limitMs) {
    if ((await timed(fn)).err === undefined) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no successful operation within ${limitMs} ms`)
}

for (const [name, make] of Object.entries(CLIENTS)) {
  t.test(name, async (t) => {
    t.test('store contract', async (t) => {
      await storeContract(t, async () => {
        const made = await make(shared.redis.url)
        const store = new RedisSessionStore({ client: made.client, prefix: `c${Math.random().toString(36).slice(2, 8)}:` })
        await store.connect(3000)
        return {
          store,
          cleanup: async () => {
            await store.close()
            t.ok(made.ready(), 'close() leaves the user client open')
            await made.close()
          }
        }
      })
    })

    t.test('keys are sess:<id> with a PX TTL, a tombstone is the JSON null, ids/length/clear see them right', async (t) => {
      const made = await make(shared.redis.url)
      t.teardown(() => made.close())
      const prefix = `m${Math.random().toString(36).slice(2, 8)}:`
      const store = new RedisSessionStore({ client: made.client, prefix })
      t.teardown(() => store.close())
      await store.connect(3000)
      const ids = Array.from({ length: 25 }, () => newSessionId())
      for (const id of ids) await store.set(id, JSON.stringify({ id }), 60_000)
      t.ok(await shared.raw.pttl(`${prefix}${ids[0]}`) > 50_000, 'PX TTL set')
      await store.destroy(ids[0])
      t.equal(await shared.raw.get(`${prefix}${ids[0]}`), 'null', 'the tombstone')
      t.same([...await store.ids()].sort(), ids.slice(1).sort(), 'ids(): the live sessions, not the tombstone')
      t.equal(await store.length(), 24)
      t.equal(await store.clear(), 25, 'clear(): sessions and the tombstone')
      t.equal(await store.length(), 0)
      t.same(await shared.raw.keys(`${prefix}*`), [])
    })

    t.test('a Redis error reply is a 503 for that operation but not an outage (no fail-fast)', async (t) => {
      const made = await make(shared.redis.url)
      t.teardown(() => made.close())
      const store = new RedisSessionStore({ client: made.client, prefix: `e${Math.random().toString(36).slice(2, 8)}:` })
      t.teardown(() => store.close())
      await store.connect(3000)
      const wrong = newSessionId()
      await shared.raw.lpush(`${store.prefix}${wrong}`, 'not a string') // WRONGTYPE for GET
      const err = await store.get(wrong).then(() => undefined, (e: unknown) => e)
      t.ok(err instanceof StoreUnavailableError, 'a 503-shaped error')
      t.match(String((err as StoreUnavailableError).cause), /WRONGTYPE/)
      const ok = newSessionId()
      await store.set(ok, '{"a":1}', 60_000)
      t.equal((await store.get(ok))?.json, '{"a":1}', 'the very next operation runs: the circuit did not open')
    })

    t.test('frozen (SIGSTOP) and killed Redis: every operation ends within the timeout, fail-fast, recovery', async (t) => {
      const redis = await serverFor(t)
      const made = await make(redis.url, { forever: true })
      t.teardown(() => made.close())
      // A cool-down long enough that a stalled test process cannot let the next call through as
      // the half-open probe (300 ms did on a loaded machine: it then waited its 400 ms timeout).
      const store = new RedisSessionStore({ client: made.client, timeoutMs: 400, breakerCooldownMs: 1000 })
      t.teardown(() => store.close())
      await store.connect(3000)
      const id = newSessionId()
      await store.set(id, '{"u":1}', 60_000)

      redis.freeze()
      const frozen = await Promise.all([timed(() => store.get(id)), timed(() => store.set(newSessionId(), '{}', 60_000)), timed(() => store.touch(id, 60_000))])
      t.ok(frozen.every((o) => o.err instanceof StoreUnavailableError), 'all three fail as 503s')
      const slowest = Math.max(...frozen.map((o) => o.ms))
      t.ok(slowest < 400 + SLACK_MS, `frozen: slowest ${slowest.toFixed(0)} ms < ${400 + SLACK_MS} ms`)
      const fast = await timed(() => store.get(id))
      t.ok(fast.err instanceof StoreUnavailableError && (fast.err as StoreUnavailableError).cause instanceof CircuitOpenError, 'the next one fails fast (circuit open)')
      t.ok(fast.ms < 400 / 2, `in ${fast.ms.toFixed(1)} ms, not after the 400 ms timeout`)
      const health = await store.check()
      t.equal(health.ok, false, 'check() says not ok, without throwing')
      redis.thaw()
      t.ok(await untilOk(() => store.get(id), 8000) < 6000, 'back after SIGCONT')

      await redis.kill()
      const killed = await Promise.all([timed(() => store.get(id)), timed(() => store.destroy(newSessionId()))])
      t.ok(killed.every((o) => o.err instanceof StoreUnavailableError && o.ms < 400 + SLACK_MS), `killed: 503s within the bound (${killed.map((o) => o.ms.toFixed(0)).join(', ')} ms)`)
      await redis.restart()
      t.ok(await untilOk(() => store.set(id, '{"u":2}', 60_000), 10_000) < 8000, 'the client reconnects by itself and the store follows')
      t.equal((await store.get(id))?.json, '{"u":2}')
      t.ok(made.ready(), 'the user client is still open')
    })

    t.test('through the plugin: redisClient, login, another instance, logout', async (t) => {
      withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A })
      const made = await make(shared.redis.url)
      t.teardown(() => made.close())
      const one = await startApp(t, { options: { store: 'redis', redisClient: made.client } })
      t.equal(one.app.sessionBackend.kind, 'redis')
      t.equal((await one.app.sessionBackend.check()).ok, true)
      const two = await startApp(t, { options: { store: 'redis', redisClient: made.client } })
      const c = new Client(one.url)
      await c.post('/login?name=alice')
      const other = new Client(two.url)
      for (const [k, v] of c.jar) other.jar.set(k, v)
      t.same((await other.get('/whoami')).body, { user: 'alice' })
      const stolen = c.clone()
      await other.post('/logout')
      t.same((await stolen.get('/whoami')).body, { user: null }, 'the logout holds on the other instance')
      t.ok(made.ready(), 'the app closing does not close the client')
    })
  })
}

t.test('a node-redis client that was never connected: the boot fails in one line saying so', async (t) => {
  const client = createClient({ url: shared.redis.url })
  const { err } = await registerError({ store: 'redis', redisClient: client as unknown as RedisClient })
  t.equal(err?.message, 'Session store: the node-redis client passed in `client` is not connected; accepted: a node-redis client after `await client.connect()`')
})

t.test('something that is not a Redis client is refused at registration', async (t) => {
  const { err } = await registerError({ store: 'redis', redisClient: { get () {} } as any })
  t.match(err?.message, /^option redisClient is not valid; accepted: an ioredis \(5 or 6\) Redis or Cluster, or a node-redis \(5\) client, cluster or sentinel/)
})
