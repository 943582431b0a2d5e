/**
 * `store:` a @fastify/session / express-session store object (callback get/set/destroy, optional
 * touch) works end to end through the plugin, with real third-party stores: express-session's
 * MemoryStore, session-file-store on a real directory, connect-redis 8 on a private redis-server,
 * and @fastify/session's own MemoryStore (which keeps live object references). What a user sees:
 * login, read, write, logout, sliding expiry by the store's touch, no writes for read-only
 * requests, and — from our guarantees — every call bounded (a store that never calls back is a 503
 * within the timeout, not a hang) and no live objects shared with the store.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import expressSession from 'express-session'
import fastifySession from '@fastify/session'
import { RedisStore } from 'connect-redis'
import { Redis } from 'ioredis'
import { privateRedisForFile } from './helpers/redis-server'
import { CLEAN_ENV, Client, SECRET_A, addRoutes, findSetCookie, registerError, sleep, startApp, withEnv } from './fixtures/sessions-helpers'
import type { SessionsOptions } from '../lib/sessions/plugin'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const FileStore = require('session-file-store')(expressSession)

const shared = privateRedisForFile(t)

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

type Method = 'get' | 'set' | 'destroy' | 'touch'

/** Counts the calls the third-party store receives, without changing it. */
function counted<T extends object> (store: T): { store: T, calls: Record<Method, number> } {
  const calls = { get: 0, set: 0, destroy: 0, touch: 0 }
  const proxy = new Proxy(store, {
    get (target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value === 'function' && prop in calls) {
        return (...args: unknown[]) => { calls[prop as Method]++; return value.apply(target, args) }
      }
      return value
    }
  })
  return { store: proxy, calls }
}

const STORES: Record<string, (t: Test) => object> = {
  'express-session MemoryStore': () => new expressSession.MemoryStore(),
  'session-file-store': (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callback-store-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    return new FileStore({ path: dir, retries: 0, reapInterval: -1, logFn: () => {} })
  },
  'connect-redis 8 (ioredis)': (t) => {
    const client = new Redis(shared.redis.url)
    t.teardown(() => client.disconnect())
    return new RedisStore({ client, prefix: `cb${Math.random().toString(36).slice(2)}:` })
  },
  "@fastify/session's MemoryStore": () => new fastifySession.MemoryStore()
}

function routes (app: FastifyInstance): void {
  addRoutes(app)
  app.post('/prefs', async (request) => {
    (request.session as any).prefs = { theme: 'light' }
    return { ok: true }
  })
  app.post('/prefs-then-reload', async (request) => {
    (request.session as any).prefs.theme = 'dark' // a nested change, then thrown away:
    await request.session.reload() // what the store holds
    return { prefs: (request.session as any).prefs }
  })
  app.get('/prefs', async (request) => ({ prefs: (request.session as any).prefs ?? null }))
}

async function start (t: Test, options: SessionsOptions): Promise<{ url: string, app: FastifyInstance, reason: string }> {
  const started = await startApp(t, { options, routes })
  return { url: started.url, app: started.app, reason: started.app.sessionBackend.reason }
}

for (const [name, make] of Object.entries(STORES)) {
  t.test(name, async (t) => {
    t.test('login, read, write, logout: the user sees a working session', async (t) => {
      const { store, calls } = counted(make(t))
      const { url, app } = await start(t, { store: store as any, ttl: 3600 })
      t.equal(app.sessionBackend.kind, 'custom')
      t.match(app.sessionBackend.reason, /@fastify\/session \/ express-session store API\) was passed in code \(option store\)/)
      const c = new Client(url)
      t.same((await c.get('/public')).body, { ok: true })
      t.same(calls, { get: 0, set: 0, destroy: 0, touch: 0 }, 'an anonymous request does not touch the store')
      const login = await c.post('/login?name=alice')
      t.ok(findSetCookie(login), 'login sets the cookie')
      t.same((await c.get('/whoami')).body, { user: 'alice' })
      t.same((await c.post('/visit')).body, { visits: 1 })
      t.same((await c.get('/visits')).body, { visits: 1 })
      const writes = calls.set
      for (let i = 0; i < 3; i++) await c.get('/whoami')
      t.equal(calls.set, writes, 'read-only requests do not write')
      const stolen = c.clone()
      const out = await c.post('/logout')
      t.match(findSetCookie(out), /Max-Age=0|Expires=Thu, 01 Jan 1970/, 'logout clears the cookie')
      t.equal(calls.destroy >= 1, true, 'the store was asked to destroy it')
      t.same((await stolen.get('/whoami')).body, { user: null }, 'the old cookie has no session any more')
    })

    t.test('the session data is copied, never shared with the store (JSON round trip)', async (t) => {
      const { url } = await start(t, { store: make(t) as any })
      const c = new Client(url)
      await c.post('/login')
      await c.post('/prefs')
      t.same((await c.post('/prefs-then-reload')).body, { prefs: { theme: 'light' } }, 'an unsaved nested change is not in the store')
    })

    t.test('expiry slides through the store\'s touch (or a re-save), at most once per interval', async (t) => {
      const { store, calls } = counted(make(t))
      // ttl 10 s: a refresh is due after a tenth of it (touch.ts).
      const { url } = await start(t, { store: store as any, ttl: 10 })
      const c = new Client(url)
      await c.post('/login')
      const before = { touch: calls.touch, set: calls.set }
      await c.get('/whoami')
      t.same({ touch: calls.touch, set: calls.set }, before, 'not yet due: no store call')
      await sleep(1100)
      const res = await c.get('/whoami')
      t.same(res.body, { user: 'alice' })
      const slid = calls.touch - before.touch + calls.set - before.set
      t.equal(slid, 1, 'one refresh once due')
      t.ok(findSetCookie(res), 'and the cookie slides too')
    })

    t.test('cookie.maxAge null: a browser-session cookie, while the store is still told to drop the session after ttl', async (t) => {
      const store = make(t) as { set: (sid: string, session: any, cb: (err?: unknown) => void) => unknown }
      let stored: any
      const set = store.set.bind(store)
      store.set = (sid, session, cb) => { stored = JSON.parse(JSON.stringify(session)); return set(sid, session, cb) }
      const { url } = await start(t, { store: store as any, ttl: 3600, cookie: { maxAge: null } })
      const c = new Client(url)
      const login = findSetCookie(await c.post('/login'))
      t.ok(login !== undefined && !/Expires=|Max-Age=/i.test(login), `no Expires on the cookie (${login})`)
      t.equal(stored?.cookie?.originalMaxAge, null, 'the store sees a browser-session cookie, as express-session would give it')
      const expires = Date.parse(stored?.cookie?.expires)
      t.ok(Math.abs(expires - (Date.now() + 3600_000)) < 5000, 'and cookie.expires one ttl away: when it drops the session')
      t.same((await c.get('/whoami')).body, { user: 'alice' })
      const write = findSetCookie(await c.post('/visit'))
      t.ok(write !== undefined && !/Expires=/i.test(write), 'still a browser-session cookie after a reload from the store and a write')
    })
  })
}

/** A store written the way a hand-written one often is, whose backend can hang or fail. */
class FlakyStore {
  mode: 'ok' | 'hang' | 'fail' | 'enoent' = 'ok'
  private readonly data = new Map<string, string>()
  get (sid: string, cb: (err: unknown, session?: unknown) => void): void {
    if (this.mode === 'hang') return // never calls back
    if (this.mode === 'fail') { cb(new Error('connection refused by db.internal:5432')); return }
    if (this.mode === 'enoent') { cb(Object.assign(new Error('no such session'), { code: 'ENOENT' })); return }
    const raw = this.data.get(sid)
    cb(null, raw === undefined ? null : JSON.parse(raw))
  }

  set (sid: string, session: unknown, cb: (err?: unknown) => void): void {
    if (this.mode === 'hang') return
    this.data.set(sid, JSON.stringify(session))
    cb()
  }

  destroy (sid: string, cb: (err?: unknown) => void): void {
    this.data.delete(sid)
    cb()
  }
}

t.test('a store that hangs or fails: 503 with Retry-After within the timeout, no internals, no hang', async (t) => {
  const store = new FlakyStore()
  const { url } = await start(t, { store: store as any, redisTimeout: 300 })
  const c = new Client(url)
  await c.post('/login')
  store.mode = 'hang'
  const hung = await c.get('/whoami')
  t.equal(hung.status, 503, 'a get that never calls back is a 503')
  t.equal(hung.headers.get('retry-after'), '1')
  t.ok(hung.ms < 300 + 1500, `answered in ${hung.ms.toFixed(0)} ms (timeout 300 ms)`)
  t.same((await c.get('/public')).body, { ok: true }, 'a route that does not use the session still answers')
  store.mode = 'fail'
  const failed = await c.get('/whoami')
  t.equal(failed.status, 503)
  t.notMatch(JSON.stringify(failed.body), /db\.internal|5432|refused/, 'the body does not leak the store\'s error')
  store.mode = 'ok'
  t.same((await c.get('/whoami')).body, { user: 'alice' }, 'service comes back with the store, the user still logged in')
  store.mode = 'enoent'
  t.same((await c.clone().get('/whoami')).body, { user: null }, 'ENOENT means "no session" (the store contract\'s special case), not an error')
})

t.test('an object that is not a store is refused at registration', async (t) => {
  const { err } = await registerError({ store: { get () {} } as any })
  t.match(err?.message, /^option store=.* is not valid for session-store; accepted: auto, redis, file, memory/)
})
