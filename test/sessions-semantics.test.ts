/**
 * What a user of the sessions plugin sees, on the memory and the file store: cookie attributes,
 * no store traffic for anonymous requests, no rewrites for read-only ones, sliding expiry by touch,
 * logout that clears the cookie, no resurrection by a slower concurrent request, regenerate on
 * login, secret rotation. Real server, real socket, our own cookie jar.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import { FileSessionStore } from '../lib/sessions/stores/file'
import type { SessionRecordStore } from '../lib/sessions/stores/types'
import { CLEAN_ENV, Client, CountingStore, SECRET_A, SECRET_B, findSetCookie, sleep, startApp, withEnv } from './fixtures/sessions-helpers'

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

function makeStore (t: Test, kind: 'memory' | 'file'): CountingStore {
  let inner: SessionRecordStore
  if (kind === 'memory') {
    inner = new MemorySessionStore()
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-semantics-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    inner = new FileSessionStore({ dir, reapIntervalMs: 0 })
  }
  const store = new CountingStore(inner)
  t.teardown(() => store.close())
  return store
}

function expiresOf (setCookie: string | undefined): number {
  const m = /;\s*Expires=([^;]+)/i.exec(setCookie ?? '')
  return m === null ? NaN : Date.parse(m[1])
}

for (const kind of ['memory', 'file'] as const) {
  t.test(`${kind} store`, async (t) => {
    t.test('login cookie: HttpOnly, SameSite=Lax, Path=/, an expiry, and no Secure on plain http', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store, ttl: 3600 } })
      const res = await new Client(url).post('/login?name=alice')
      const sc = findSetCookie(res)
      t.ok(sc, 'a session cookie is set on login')
      t.match(sc, /; HttpOnly/)
      t.match(sc, /; SameSite=Lax/)
      t.match(sc, /; Path=\//)
      t.notMatch(sc, /; Secure/i)
      const expires = expiresOf(sc)
      t.ok(Math.abs(expires - (Date.now() + 3600_000)) < 5000, 'expires after the ttl (ms vs s done right)')
    })

    t.test('the cookie is Secure when the request is https (trusted proxy)', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store }, trustProxy: true })
      const c = new Client(url)
      const res = await c.post('/login?name=alice', { 'x-forwarded-proto': 'https' })
      t.match(findSetCookie(res), /; Secure/)
      t.same((await c.get('/whoami', { 'x-forwarded-proto': 'https' })).body, { user: 'alice' })
    })

    t.test('requests without a session cookie never touch the store and get no cookie', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store } })
      const c = new Client(url)
      for (const p of ['/public', '/whoami', '/visits', '/public']) {
        const res = await c.get(p)
        t.equal(res.status, 200)
        t.equal(findSetCookie(res), undefined, `${p}: no Set-Cookie`)
      }
      t.same(store.calls, { get: 0, set: 0, patch: 0, touch: 0, destroy: 0 }, 'zero store calls')
    })

    t.test('read-only requests do not rewrite the session', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store, ttl: 3600 } })
      const c = new Client(url)
      await c.post('/login?name=alice')
      const writes = store.writes()
      for (let i = 0; i < 5; i++) {
        const res = await c.get('/whoami')
        t.same(res.body, { user: 'alice' })
        t.equal(findSetCookie(res), undefined, 'no Set-Cookie on a read-only request')
      }
      t.equal(store.writes(), writes, 'no store writes')
      t.equal(store.calls.touch, 0, 'no touch before an interval has passed')
      await c.post('/visit')
      t.equal(store.writes(), writes + 1, 'a write is saved once')
    })

    t.test('sliding expiry: regular requests keep a 2 s session alive well past 2 s; idle, it expires', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store, ttl: 2 } })
      const c = new Client(url)
      const login = await c.post('/login?name=alice')
      const started = Date.now()
      const firstExpires = expiresOf(findSetCookie(login))
      let lastExpires = firstExpires
      let reissued = 0
      while (Date.now() - started < 4200) {
        await sleep(700)
        const res = await c.get('/whoami')
        t.same(res.body, { user: 'alice' }, `alive at ${Date.now() - started} ms`)
        const sc = findSetCookie(res)
        if (sc !== undefined) { reissued++; lastExpires = expiresOf(sc) }
      }
      t.ok(reissued >= 4, `the browser cookie was re-issued (${reissued} times)`)
      t.ok(lastExpires - firstExpires >= 3000, `and its expiry slid by ${lastExpires - firstExpires} ms`)
      t.ok(store.calls.touch >= 4, `refreshed by touch (${store.calls.touch}), not by rewriting`)
      await sleep(2800)
      t.same((await c.get('/whoami')).body, { user: null }, 'idle longer than the ttl: logged out')
    })

    t.test('touch happens at most once per interval (ttl/10)', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store, ttl: 20 } }) // interval 2 s
      const c = new Client(url)
      await c.post('/login?name=alice')
      const burst = async (): Promise<number> => {
        let cookies = 0
        for (let i = 0; i < 5; i++) if (findSetCookie(await c.get('/whoami')) !== undefined) cookies++
        return cookies
      }
      t.equal(await burst(), 0, 'within the first interval: no cookie re-issued')
      t.equal(store.calls.touch, 0, 'and no touch')
      await sleep(2200)
      t.equal(await burst(), 1, 'after one interval: exactly one response slides the cookie')
      t.equal(store.calls.touch, 1, 'and exactly one touch')
    })

    t.test('many users at once: each session is refreshed exactly once per interval, none mixed up', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store, ttl: 20 } }) // interval 2 s
      const users = Array.from({ length: 12 }, (_v, i) => ({ name: `user${i}`, client: new Client(url) }))
      await Promise.all(users.map(async (u) => await u.client.post(`/login?name=${u.name}`)))
      await sleep(2200)
      // Every user sends three requests one after the other, all users at the same time: the loads
      // of different sessions interleave in the store.
      const slid = await Promise.all(users.map(async (u) => {
        let cookies = 0
        for (let i = 0; i < 3; i++) {
          const res = await u.client.get('/whoami')
          t.same(res.body, { user: u.name }, `${u.name} sees their own session`)
          if (findSetCookie(res) !== undefined) cookies++
        }
        return cookies
      }))
      t.same(slid, users.map(() => 1), 'each user got exactly one re-issued cookie')
      t.equal(store.calls.touch, users.length, 'and each session exactly one touch')
    })

    t.test('logout clears the cookie in the same response; the old cookie is dead', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store } })
      const c = new Client(url)
      await c.post('/login?name=alice')
      const stolen = c.clone()
      const res = await c.post('/logout')
      const sc = findSetCookie(res)
      t.match(sc, /^sessionId=;/, 'Set-Cookie empties the cookie')
      t.match(sc, /Max-Age=0|Expires=Thu, 01 Jan 1970/)
      t.match(sc, /; Path=\//)
      t.equal(c.jar.size, 0, 'the browser dropped it')
      t.same((await c.get('/whoami')).body, { user: null })
      t.same((await stolen.get('/whoami')).body, { user: null }, 'a copy of the old cookie is anonymous')
    })

    t.test('a slower request that loaded the session cannot resurrect it after logout', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store } })
      const c = new Client(url)
      await c.post('/login?name=alice')
      const otherTab = c.clone()
      const oldCookie = c.clone()
      const slow = otherTab.post('/slow-note?ms=600') // loads now, writes the session at ~600 ms
      await sleep(200)
      t.equal((await c.post('/logout')).status, 200)
      const slowRes = await slow
      t.same(slowRes.body, { seen: 'alice' }, 'the slow request had loaded the session before the logout')
      t.same((await oldCookie.get('/whoami')).body, { user: null }, 'old cookie: still logged out')
      t.same((await otherTab.get('/whoami')).body, { user: null }, 'the slow tab: logged out too')
    })

    t.test('regenerate() on login: a new id, and the old id no longer loads', async (t) => {
      const store = makeStore(t, kind)
      const { url } = await startApp(t, { options: { store } })
      const c = new Client(url)
      t.same((await c.post('/visit')).body, { visits: 1 })
      const before = c.clone()
      t.same((await before.get('/visits')).body, { visits: 1 }, 'the anonymous session exists')
      await c.post('/login?name=alice')
      t.not(c.jar.get('sessionId'), before.jar.get('sessionId'), 'login issued a new session id')
      t.same((await c.get('/whoami')).body, { user: 'alice' })
      t.same((await before.get('/visits')).body, { visits: null }, 'the pre-login id is gone (no fixation)')
      t.same((await before.get('/whoami')).body, { user: null })
    })
  })
}

t.test('secret rotation "new,old": a cookie signed with the old secret still works and is re-signed', async (t) => {
  const store = makeStore(t, 'memory') // one store for three "deploys"
  const v1 = await startApp(t, { options: { store, secret: [SECRET_A] } })
  const c = new Client(v1.url)
  await c.post('/login?name=alice')
  const signedWithA = c.jar.get('sessionId')
  const writes = store.writes()

  const v2 = await startApp(t, { options: { store, secret: [SECRET_B, SECRET_A] } })
  const onV2 = new Client(v2.url)
  onV2.jar.set('sessionId', signedWithA as string)
  const res = await onV2.get('/whoami')
  t.same(res.body, { user: 'alice' }, 'the old-secret cookie verifies')
  t.equal(res.setCookies.length, 1, 'one Set-Cookie')
  t.notMatch(res.setCookies[0], /Max-Age=0/, 'the user is not logged out by the rotation (research 2.6)')
  t.ok(onV2.jar.get('sessionId') !== signedWithA, 'the cookie was re-signed with the new secret')
  t.equal(store.writes(), writes, 're-signing rewrote nothing in the store')

  const v3 = await startApp(t, { options: { store, secret: [SECRET_B] } }) // old secret retired
  const onV3 = new Client(v3.url)
  onV3.jar.set('sessionId', onV2.jar.get('sessionId') as string)
  t.same((await onV3.get('/whoami')).body, { user: 'alice' }, 're-signed cookie works once the old secret is gone')
  const stale = new Client(v3.url)
  stale.jar.set('sessionId', signedWithA as string)
  t.same((await stale.get('/whoami')).body, { user: null }, 'a cookie signed only with the retired secret is refused')
})
