/**
 * Issue 14 through the plugin, one interleaving at a time: a request that loaded the session is held
 * at a gate (server side) while other requests of the same user change the session, then released.
 * What each store then holds is what a user sees: changes to other keys kept, deleted keys gone,
 * the same key last-writer-wins, nested objects replaced whole, logouts and regenerate() winning,
 * expiry, the size limit on the merged session, a save bounded by the store timeout, and the
 * whole-session fallbacks (the opt-out, a store object of your own). The cluster-wide version is sessions-merge-cluster.test.ts.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import session from 'express-session'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import type { SessionRecordStore } from '../lib/sessions/stores/types'
import { privateRedisForFile, startRedis } from './helpers/redis-server'
import { sessionPaths } from '../lib/sessions/stores/file/paths'
import { CLEAN_ENV, Client, CountingStore, SECRET_A, findSetCookie, registerError, startApp, withEnv, type Response } from './fixtures/sessions-helpers'
import type { SessionsOptions } from '../lib/sessions/config'

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

const server = privateRedisForFile(t)

type Kind = 'memory' | 'file' | 'redis'

async function makeStore (t: Test, kind: Kind): Promise<SessionRecordStore> {
  let store: SessionRecordStore
  if (kind === 'memory') {
    store = new MemorySessionStore()
  } else if (kind === 'file') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-merge-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    store = new FileSessionStore({ dir, reapIntervalMs: 0 })
  } else {
    const redis = new RedisSessionStore({ url: server.redis.url, prefix: `m${Math.random().toString(36).slice(2, 8)}:` })
    await redis.connect(3000)
    store = redis
  }
  t.teardown(() => store.close())
  return store
}

interface Gate { reached: Promise<void>, arrive: () => void, release: () => void, released: Promise<void> }

function gate (): Gate {
  let arrive!: () => void
  let release!: () => void
  const reached = new Promise<void>((resolve) => { arrive = resolve })
  const released = new Promise<void>((resolve) => { release = resolve })
  return { reached, arrive, release, released }
}

/**
 * /login sets user; /set?k=…&v=… sets a key (v is JSON); /unset?k=…; /nested?k=…&f=…&v=… mutates
 * a field of an object in place; /hold/<name>?then=<one of those, url-encoded> loads the session,
 * waits at gate <name>, then does it; /state answers every key; /logout, /regenerate.
 */
function routes (gates: Map<string, Gate>) {
  return (app: FastifyInstance): void => {
    const apply = (s: any, op: string): void => {
      const u = new URL(op, 'http://x')
      const k = u.searchParams.get('k') as string
      if (u.pathname === '/set') s.set(k, JSON.parse(u.searchParams.get('v') as string))
      else if (u.pathname === '/assign') s[k] = JSON.parse(u.searchParams.get('v') as string)
      else if (u.pathname === '/unset') delete s[k]
      else if (u.pathname === '/nested') {
        const box = s.get(k) ?? {}
        if (s.get(k) === undefined) s.set(k, box)
        box[u.searchParams.get('f') as string] = JSON.parse(u.searchParams.get('v') as string)
      }
    }
    app.post('/login', async (request) => {
      request.session.set('user', 'alice')
      return { ok: true }
    })
    for (const op of ['/set', '/assign', '/unset', '/nested']) {
      app.post(op, async (request) => {
        apply(request.session, request.url)
        return { ok: true }
      })
    }
    app.post('/hold/:name', async (request) => {
      const g = gates.get((request.params as { name: string }).name) as Gate
      void request.session.get('user') // the session is loaded before the handler runs anyway
      g.arrive()
      await g.released
      apply(request.session, (request.query as { then: string }).then)
      return { ok: true }
    })
    app.get('/state', async (request) => {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(request.session)) if (k !== 'cookie') out[k] = v
      return out
    })
    app.post('/logout', async (request) => {
      await request.session.destroy()
      return { ok: true }
    })
    app.post('/regenerate', async (request) => {
      await request.session.regenerate()
      request.session.set('user', 'alice-again')
      return { ok: true }
    })
  }
}

interface Harness { c: Client, hold: (name: string, then: string) => Promise<() => Promise<Response>>, state: () => Promise<any> }

async function start (t: Test, options: SessionsOptions): Promise<Harness> {
  const gates = new Map<string, Gate>()
  const { url } = await startApp(t, { options, routes: routes(gates) })
  const c = new Client(url)
  t.equal((await c.post('/login')).status, 200)
  return {
    c,
    /** Starts a held request (with its own copy of the cookies); resolves once it has loaded the session. */
    async hold (name, then) {
      const g = gate()
      gates.set(name, g)
      const pending = c.clone().post(`/hold/${name}?then=${encodeURIComponent(then)}`)
      await g.reached
      return async () => { g.release(); return await pending }
    },
    state: async () => (await c.get('/state')).body
  }
}

for (const kind of ['memory', 'file', 'redis'] as const) {
  t.test(`${kind} store`, async (t) => {
    t.test('a slower request saving key A keeps the key B another request saved meanwhile', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind) })
      const finish = await hold('a', '/set?k=note&v="written late"')
      t.equal((await c.post('/assign?k=visits&v=1')).status, 200)
      t.equal((await finish()).status, 200)
      t.same(await state(), { user: 'alice', visits: 1, note: 'written late' }, 'both changes are there')
    })

    t.test('a deleted key stays deleted, other keys changed meanwhile are kept', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind) })
      await c.post('/set?k=flash&v="saved!"')
      const finish = await hold('a', '/unset?k=flash')
      await c.post('/set?k=cart&v=[1,2]')
      await finish()
      t.same(await state(), { user: 'alice', cart: [1, 2] })
    })

    t.test('the same key: the last save wins for that key only', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind) })
      const finish = await hold('a', '/set?k=cart&v="from the slow request"')
      await c.post('/set?k=cart&v="from the fast request"')
      await c.post('/set?k=prefs&v={"lang":"fr"}')
      await finish()
      t.same(await state(), { user: 'alice', cart: 'from the slow request', prefs: { lang: 'fr' } })
    })

    t.test('a nested object mutated in place is saved; the unit is the top-level key (replaced whole)', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind) })
      await c.post('/set?k=profile&v={"name":"Alice","email":"a@x"}')
      const finish = await hold('a', '/nested?k=profile&f=name&v="Alicia"')
      await c.post('/set?k=cart&v=[3]')
      await c.post('/nested?k=profile&f=email&v="alice@example.com"')
      await finish()
      t.same(await state(), { user: 'alice', profile: { name: 'Alicia', email: 'a@x' }, cart: [3] },
        'the in-place change landed and cart was kept; the parallel change of another field of profile was replaced with it (documented)')
    })

    t.test('logout wins over a save in flight: the session stays destroyed, no cookie for it', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind) })
      const old = c.clone()
      const finish = await hold('a', '/set?k=note&v="late"')
      await c.post('/logout')
      const late = await finish()
      t.equal(late.status, 200)
      t.equal(findSetCookie(late), undefined, 'the late response sets no cookie for the destroyed session')
      t.same((await old.get('/state')).body, {}, 'the old cookie loads nothing: not brought back, not even partly')
      t.same(await state(), {})
    })

    t.test('regenerate() wins over a save in flight: the old id stays dead, the new session is untouched', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind) })
      const old = c.clone()
      const finish = await hold('a', '/set?k=note&v="late"')
      await c.post('/regenerate')
      const late = await finish()
      t.equal(findSetCookie(late), undefined, 'the late response does not replace the new cookie with the dead one')
      t.same((await old.get('/state')).body, {}, 'the old id loads nothing')
      t.same(await state(), { user: 'alice-again' }, 'the new session has only its own data')
    })

    t.test('a session that expired while a request held it is not created again by its save', async (t) => {
      const store = await makeStore(t, kind)
      // 3 s: the cookie's Expires has one-second resolution, and a browser (our client) drops a
      // cookie already expired when a slow response arrives; the store's expiry is what is tested.
      const { c, hold } = await start(t, { store, ttl: 3 })
      const signed = decodeURIComponent(c.jar.get('sessionId') ?? '')
      const id = signed.slice(0, signed.lastIndexOf('.'))
      t.not(await store.get(id), null, 'stored')
      const finish = await hold('a', '/set?k=note&v="late"')
      // Read the store directly (a request would slide the expiry): wait for it to expire.
      const deadline = Date.now() + 10_000
      while (await store.get(id) !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      t.equal(await store.get(id), null, 'expired while the request was held')
      const late = await finish()
      t.equal(late.status, 200)
      t.equal(findSetCookie(late), undefined, 'no cookie for the expired session')
      t.equal(await store.get(id), null, 'no partial session with only the late key')
    })

    t.test('a request that changes nothing writes nothing (read, nested read, same value)', async (t) => {
      const store = new CountingStore(await makeStore(t, kind))
      const { c } = await start(t, { store })
      await c.post('/set?k=profile&v={"name":"Alice"}')
      const writes = store.writes()
      await c.get('/state')
      await c.post('/set?k=user&v="alice"')
      await c.post('/nested?k=profile&f=name&v="Alice"')
      t.equal(store.writes(), writes, 'no store write')
      await c.post('/nested?k=profile&f=name&v="Alicia"')
      t.equal(store.calls.patch, 2, 'a change is one patch (after the first save of the logged-in session)')
    })

    t.test('the size limit applies to the merged session: 413, nothing written', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind), maxSize: 2048 })
      const big = JSON.stringify('x'.repeat(1200))
      const finish = await hold('a', `/set?k=b&v=${big}`)
      t.equal((await c.post(`/set?k=a&v=${big}`)).status, 200, 'alone, 1.2 KB fits in 2 KB')
      const late = await finish()
      t.equal(late.status, 413, 'merged with the other request\'s key, 2.4 KB does not fit')
      t.same(Object.keys(await state()), ['user', 'a'], 'the stored session is as before the refused save')
    })

    t.test('writes: "replace" (the opt-out): the last whole-session save undoes the other', async (t) => {
      const { c, hold, state } = await start(t, { store: await makeStore(t, kind), writes: 'replace' })
      const finish = await hold('a', '/set?k=note&v="written late"')
      await c.post('/assign?k=visits&v=1')
      await finish()
      t.same(await state(), { user: 'alice', note: 'written late' }, 'visits was lost, as with @fastify/session')
    })
  })
}

// A save that cannot finish (Redis frozen after the load; the file record locked by a live process)
// ends with a 503 within the store timeout, and nothing of it is written.
const TIMEOUT_MS = 400
// Two timeouts: @fastify/session tries the save again when the 503 goes out (adapter.ts, the
// onSend hooks run twice), and the file store has no breaker to fail that second try fast. Plus
// slack for 2 shared cores: generous, yet far from a hang.
const SAVE_BOUND_MS = 2 * TIMEOUT_MS + 1500

t.test('a save (patch) is bounded by the store timeout: 503, nothing written', async (t) => {
  t.test('redis store, Redis frozen (SIGSTOP) after the load', async (t) => {
    const redis = await startRedis()
    t.teardown(() => redis.stop()) // stop() SIGCONTs before killing
    const store = new RedisSessionStore({ url: redis.url, timeoutMs: TIMEOUT_MS })
    t.teardown(() => store.close())
    await store.connect(3000)
    const { c, hold } = await start(t, { store })
    const finish = await hold('a', '/set?k=note&v="late"')
    redis.freeze()
    const released = performance.now()
    const late = await finish()
    const ms = performance.now() - released
    redis.thaw()
    t.equal(late.status, 503, 'the save failed as unavailable')
    t.ok(ms < SAVE_BOUND_MS, `within the timeout (${ms.toFixed(0)} ms, timeout ${TIMEOUT_MS} ms)`)
    // The failure opened the circuit breaker: reads answer 503 until its cool-down probe succeeds.
    let after = await c.get('/state')
    for (const deadline = Date.now() + 10_000; after.status === 503 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      after = await c.get('/state')
    }
    t.same(after.body, { user: 'alice' }, 'nothing of the failed save is stored')
  })

  t.test('file store, the record locked by a live process', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-merge-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const store = new FileSessionStore({ dir, reapIntervalMs: 0, timeoutMs: TIMEOUT_MS })
    t.teardown(() => store.close())
    const { c, hold, state } = await start(t, { store })
    const signed = decodeURIComponent(c.jar.get('sessionId') ?? '')
    const lock = sessionPaths(dir, signed.slice(0, signed.lastIndexOf('.'))).lock
    const finish = await hold('a', '/set?k=note&v="late"')
    fs.writeFileSync(lock, String(process.pid), { mode: 0o600 }) // a live holder: respected until the timeout
    const released = performance.now()
    const late = await finish()
    const ms = performance.now() - released
    fs.unlinkSync(lock)
    t.equal(late.status, 503, 'the save failed as unavailable')
    t.ok(ms >= TIMEOUT_MS - 50 && ms < SAVE_BOUND_MS, `after waiting the timeout (${ms.toFixed(0)} ms, timeout ${TIMEOUT_MS} ms)`)
    t.same(await state(), { user: 'alice' }, 'nothing of the failed save is stored')
  })
})

t.test('a store object of your own (express-session MemoryStore): whole-session writes, no merge', async (t) => {
  const { c, hold, state } = await start(t, { store: new session.MemoryStore() as any })
  const finish = await hold('a', '/set?k=note&v="written late"')
  await c.post('/assign?k=visits&v=1')
  await finish()
  t.same(await state(), { user: 'alice', note: 'written late' }, 'last writer wins (documented)')
})

t.test('writes: an unknown value is refused at registration, naming the option and the accepted values', async (t) => {
  const { err } = await registerError({ store: 'memory', writes: 'patch' as any })
  t.match(err?.message, /option writes/)
  t.match(err?.message, /merge/)
  t.match(err?.message, /replace/)
  withEnv(t, { SESSION_WRITES: 'bogus' })
  const fromEnv = await registerError({ store: 'memory' })
  t.match(fromEnv.err?.message, /SESSION_WRITES/)
})
