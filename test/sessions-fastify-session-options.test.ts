/**
 * A drop-in for @fastify/session users: the options object an app already passes to
 * `app.register(fastifySession, {…})` is honoured on the wire — Set-Cookie attributes, the ids and
 * lifetimes the store receives — or refused at registration with one line naming the option and
 * why. Never silently ignored. Real server, real socket, our own cookie jar.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Signer } from '@fastify/cookie'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import { CLEAN_ENV, Client, CountingStore, SECRET_A, addRoutes, findSetCookie, registerError, startApp, withEnv } from './fixtures/sessions-helpers'
import type { SessionsOptions } from '../lib/sessions/plugin'

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

/** A memory store that also remembers the lifetime of the last write and touch. */
class RecordingStore extends CountingStore {
  readonly ids: string[] = []
  lastSetTtl = NaN
  lastTouchTtl = NaN
  constructor () {
    super(new MemorySessionStore())
    const counted = this.patch
    if (counted !== undefined) {
      this.patch = async (id, changes, ttlMs, maxBytes) => {
        this.ids.push(id)
        this.lastSetTtl = ttlMs
        return await counted(id, changes, ttlMs, maxBytes)
      }
    }
  }
  async set (id: string, json: string, ttlMs: number): Promise<void> {
    this.ids.push(id)
    this.lastSetTtl = ttlMs
    await super.set(id, json, ttlMs)
  }

  async touch (id: string, ttlMs: number): Promise<void> {
    this.lastTouchTtl = ttlMs
    await super.touch(id, ttlMs)
  }
}

function storeFor (t: Test): RecordingStore {
  const store = new RecordingStore()
  t.teardown(() => store.close())
  return store
}

/** The routes of sessions-helpers plus routes under /admin and per-route cookie options. */
function routes (app: FastifyInstance): void {
  addRoutes(app)
  app.post('/admin/login', async (request) => {
    request.session.user = 'root'
    return { ok: true }
  })
  app.get('/admin/whoami', async (request) => ({ user: request.session.user ?? null }))
  app.get('/remember-me', async (request) => {
    request.session.options({ maxAge: 30 * 24 * 3600_000 })
    return { user: request.session.user ?? null }
  })
  app.get('/strict-here', async (request) => {
    request.session.options({ sameSite: 'strict' })
    return { user: request.session.user ?? null }
  })
  app.get('/until', async (request) => {
    const { at } = request.query as { at: string }
    request.session.options({ expires: new Date(Number(at)) })
    return { user: request.session.user ?? null }
  })
  app.get('/max-age', async (request) => {
    const { ms } = request.query as { ms: string }
    request.session.options({ maxAge: ms === 'null' ? null : Number(ms) } as any)
    return { user: request.session.user ?? null }
  })
  app.get('/priority-here', async (request) => {
    const { p } = request.query as { p: string }
    request.session.options({ priority: p } as any)
    return { user: request.session.user ?? null }
  })
  /** request.session.options({ [name]: JSON value }), for what a route may not set. */
  app.get('/route-option', async (request) => {
    const { name, value } = request.query as { name: string, value: string }
    request.session.options({ [name]: JSON.parse(value) } as any)
    return { user: request.session.user ?? null }
  })
}

async function start (t: Test, options: SessionsOptions, extra: { trustProxy?: boolean } = {}): Promise<{ url: string, warnings: () => string[], store: RecordingStore }> {
  const store = storeFor(t)
  const app = await startApp(t, { options: { store, ...options }, routes, trustProxy: extra.trustProxy })
  return { url: app.url, warnings: app.logs.warnings, store }
}

function attr (setCookie: string | undefined, name: string): string | undefined {
  for (const part of (setCookie ?? '').split(';').slice(1).map((s) => s.trim())) {
    const eq = part.indexOf('=')
    const key = eq === -1 ? part : part.slice(0, eq)
    if (key.toLowerCase() === name.toLowerCase()) return eq === -1 ? '' : part.slice(eq + 1)
  }
  return undefined
}

function expiresIn (setCookie: string | undefined): number {
  return Date.parse(attr(setCookie, 'Expires') ?? '') - Date.now()
}

const HTTPS = { 'x-forwarded-proto': 'https' }

t.test('cookieName names the cookie', async (t) => {
  const { url } = await start(t, { cookieName: 'app.sid' })
  const c = new Client(url)
  const res = await c.post('/login?name=alice')
  t.ok(findSetCookie(res, 'app.sid'), 'Set-Cookie app.sid=…')
  t.equal(findSetCookie(res, 'sessionId'), undefined)
  t.same((await c.get('/whoami')).body, { user: 'alice' })
})

t.test('cookie.path scopes the session: Path attribute, and no session outside it', async (t) => {
  const { url } = await start(t, { cookie: { path: '/admin' } })
  const c = new Client(url)
  const res = await c.post('/admin/login')
  t.equal(attr(findSetCookie(res), 'Path'), '/admin')
  t.same((await c.get('/admin/whoami')).body, { user: 'root' })
  t.same((await c.get('/whoami')).body, { user: null }, 'the same cookie sent to /whoami carries no session there')
})

t.test('cookie.domain: Domain on the cookie and on the logout cookie', async (t) => {
  const { url } = await start(t, { cookie: { domain: 'example.test' } })
  const c = new Client(url)
  t.equal(attr(findSetCookie(await c.post('/login')), 'Domain'), 'example.test')
  const out = findSetCookie(await c.post('/logout'))
  t.equal(attr(out, 'Domain'), 'example.test', 'the clearing cookie replaces the Domain cookie')
  t.equal(attr(out, 'Max-Age'), '0')
})

t.test('cookie.sameSite', async (t) => {
  t.test('strict stays Strict on plain http (secure auto)', async (t) => {
    const { url } = await start(t, { cookie: { sameSite: 'strict' } })
    t.equal(attr(findSetCookie(await new Client(url).post('/login')), 'SameSite'), 'Strict')
  })
  t.test('and on https', async (t) => {
    const { url } = await start(t, { cookie: { sameSite: 'strict' } }, { trustProxy: true })
    const sc = findSetCookie(await new Client(url).post('/login', HTTPS))
    t.equal(attr(sc, 'SameSite'), 'Strict')
    t.equal(attr(sc, 'Secure'), '')
  })
  t.test('none on https: SameSite=None; Secure', async (t) => {
    const { url } = await start(t, { cookie: { sameSite: 'none' } }, { trustProxy: true })
    const sc = findSetCookie(await new Client(url).post('/login', HTTPS))
    t.equal(attr(sc, 'SameSite'), 'None')
    t.equal(attr(sc, 'Secure'), '')
  })
  t.test('false: no SameSite attribute', async (t) => {
    const { url } = await start(t, { cookie: { sameSite: false } })
    t.equal(attr(findSetCookie(await new Client(url).post('/login')), 'SameSite'), undefined)
  })
  t.test('none with secure false is refused (browsers drop it)', async (t) => {
    const { err } = await registerError({ store: 'memory', cookie: { sameSite: 'none', secure: false } })
    t.match(err?.message, /^option cookie\.sameSite="none" is not valid \(browsers drop a SameSite=None cookie that is not Secure/)
  })
})

t.test('cookie.httpOnly false: honoured, with one warning naming the guarantee lost', async (t) => {
  const { url, warnings } = await start(t, { cookie: { httpOnly: false } })
  const c = new Client(url)
  t.equal(attr(findSetCookie(await c.post('/login')), 'HttpOnly'), undefined, 'no HttpOnly')
  await c.post('/login')
  const w = warnings().filter((l) => l.includes('cookie.httpOnly'))
  t.equal(w.length, 1, 'warned once')
  t.match(w[0], /guarantee lost: cookies are HttpOnly/)
})

t.test('cookie.secure', async (t) => {
  t.test('false: no Secure even on https', async (t) => {
    const { url } = await start(t, { cookie: { secure: false } }, { trustProxy: true })
    t.equal(attr(findSetCookie(await new Client(url).post('/login', HTTPS)), 'Secure'), undefined)
  })
  t.test('true: Secure on https, and on plain http no cookie (warned)', async (t) => {
    const { url, warnings } = await start(t, { cookie: { secure: true } }, { trustProxy: true })
    t.equal(attr(findSetCookie(await new Client(url).post('/login', HTTPS)), 'Secure'), '')
    t.equal(findSetCookie(await new Client(url).post('/login')), undefined)
    t.ok(warnings().some((w) => /Secure/.test(w)))
  })
  t.test('disagreeing with cookieSecure is refused', async (t) => {
    const { err } = await registerError({ store: 'memory', cookie: { secure: true }, cookieSecure: false })
    t.match(err?.message, /^option cookie\.secure=true and option cookieSecure=false disagree/)
  })
})

t.test('cookie.maxAge (ms): the Expires attribute and the store lifetime', async (t) => {
  const { url, store } = await start(t, { cookie: { maxAge: 120_000 } })
  const c = new Client(url)
  const sc = findSetCookie(await c.post('/login'))
  t.ok(Math.abs(expiresIn(sc) - 120_000) < 3000, `Expires in ~120 s (${expiresIn(sc)} ms)`)
  t.equal(store.lastSetTtl, 120_000, 'the store keeps it 120 s')
  t.test('with ttl meaning the same: fine; meaning another: refused (the classic s vs ms slip)', async (t) => {
    t.equal((await registerError({ store: 'memory', cookie: { maxAge: 120_000 }, ttl: 120 })).err, undefined)
    const { err } = await registerError({ store: 'memory', cookie: { maxAge: 3600 }, ttl: 3600 })
    t.match(err?.message, /^option cookie\.maxAge=3600 \(milliseconds\) and option ttl=3600 \(a bare number means seconds\) disagree/)
  })
  t.test('under one second: refused, the minimum stated', async (t) => {
    const { err } = await registerError({ store: 'memory', cookie: { maxAge: 500 } })
    t.match(err?.message, /^option cookie\.maxAge=500 is not valid; accepted: milliseconds, at least 1000/)
    const ttl = await registerError({ store: 'memory', ttl: '500ms' })
    t.match(ttl.err?.message, /option ttl="500ms" .*of at least 1s/)
  })
})

t.test('cookie.partitioned and cookie.priority reach the cookie', async (t) => {
  const { url } = await start(t, { cookie: { partitioned: true, priority: 'high', secure: true } }, { trustProxy: true })
  const sc = findSetCookie(await new Client(url).post('/login', HTTPS))
  t.equal(attr(sc, 'Partitioned'), '')
  t.equal(attr(sc, 'Priority'), 'High')
  const { err } = await registerError({ store: 'memory', cookie: { partitioned: true, secure: false } })
  t.match(err?.message, /^option cookie\.partitioned=true is not valid \(browsers drop a Partitioned cookie that is not Secure/)
})

t.test('refused cookie options: one line naming the option and why', async (t) => {
  const expires = await registerError({ store: 'memory', cookie: { expires: new Date(Date.now() + 3600_000) } as any })
  t.match(expires.err?.message, /^option cookie\.expires is refused: A date is one fixed date for every session/)
  const browserSession = await registerError({ store: 'memory', cookie: { expires: null } as any })
  t.match(browserSession.err?.message, /^option cookie\.expires is refused: .*null \(a browser-session cookie\) is spelled cookie\.maxAge: null here/)
  const encode = await registerError({ store: 'memory', cookie: { encode: (v: string) => v } as any })
  t.match(encode.err?.message, /^option cookie\.encode is refused: /)
  const signed = await registerError({ store: 'memory', cookie: { signed: true } as any })
  t.match(signed.err?.message, /^option cookie\.signed is refused: The session id is already signed/)
})

t.test('unknown names are refused, with the closest known one', async (t) => {
  const top = await registerError({ store: 'memory', cookiename: 'x' } as any)
  t.match(top.err?.message, /^option cookiename is not a sessions option \(did you mean cookieName\?\)/)
  const inner = await registerError({ store: 'memory', cookie: { samesite: 'strict' } } as any)
  t.match(inner.err?.message, /^option cookie\.samesite is not a sessions option \(did you mean cookie\.sameSite\?\)/)
})

t.test('idGenerator makes the ids; an id the stores cannot take fails loudly, naming it', async (t) => {
  let n = 0
  const { url, store } = await start(t, { idGenerator: () => `custom-${String(++n).padStart(12, '0')}` })
  const c = new Client(url)
  await c.post('/login')
  t.match(store.ids.at(-1), /^custom-0{11}\d$/, 'the store received the generated id')
  t.same((await c.get('/whoami')).body, { user: 'alice' })

  const short = await startApp(t, { options: { store: storeFor(t), idGenerator: () => `s${++n}` }, routes })
  const s = new Client(short.url)
  await s.post('/login')
  t.same((await s.get('/whoami')).body, { user: 'alice' }, 'a short id in the alphabet works (any length from 1 to 128)')

  const bad = await startApp(t, { options: { store: storeFor(t), idGenerator: () => 'a.c' }, routes })
  const res = await new Client(bad.url).post('/login')
  t.equal(res.status, 500, 'the request fails instead of a session that is silently never saved')
  const logged = bad.logs.lines.map((l) => JSON.stringify(l))
  t.ok(logged.some((l) => l.includes('option idGenerator returned an id with a character outside that alphabet; accepted: 1 to 128 characters')), 'the log names the option and what is accepted')
  t.notOk(logged.some((l) => l.includes('a.c')), 'but never the id (a bearer credential)')
})

t.test('algorithm signs with that HMAC (a sha512 signature verifies with @fastify/cookie)', async (t) => {
  const { url } = await start(t, { algorithm: 'sha512' })
  const c = new Client(url)
  await c.post('/login')
  const value = decodeURIComponent(c.jar.get('sessionId') ?? '')
  t.equal(new Signer(SECRET_A, 'sha512').unsign(value).valid, true, 'verifies with sha512')
  t.equal(new Signer(SECRET_A, 'sha256').unsign(value).valid, false, 'not with sha256')
  t.same((await c.get('/whoami')).body, { user: 'alice' })
  const { err } = await registerError({ store: 'memory', algorithm: 'nope256' })
  t.match(err?.message, /^option algorithm="nope256" is not valid; accepted: an HMAC hash name/)
})

t.test('secret may be a signer object (@fastify/cookie custom signer)', async (t) => {
  const custom = new Signer('c'.repeat(40), 'sha384')
  const { url } = await start(t, { secret: custom })
  const c = new Client(url)
  await c.post('/login')
  t.equal(custom.unsign(decodeURIComponent(c.jar.get('sessionId') ?? '')).valid, true, 'the cookie is signed by the signer passed in')
  t.same((await c.get('/whoami')).body, { user: 'alice' })
  const { err } = await registerError({ store: 'memory', secret: custom, algorithm: 'sha256' })
  t.match(err?.message, /^option algorithm="sha256" is not valid \(secret is a signer object/)
})

t.test('cookiePrefix: written before the signed id, required when reading', async (t) => {
  const { url } = await start(t, { cookiePrefix: 's:' })
  const c = new Client(url)
  await c.post('/login')
  const raw = decodeURIComponent(c.jar.get('sessionId') ?? '')
  t.match(raw, /^s:[A-Za-z0-9_-]{32}\./, 'the value starts with s: (express-session style)')
  t.same((await c.get('/whoami')).body, { user: 'alice' })
  const unprefixed = new Client(url)
  unprefixed.jar.set('sessionId', encodeURIComponent(raw.slice(2)))
  t.same((await unprefixed.get('/whoami')).body, { user: null }, 'the same id without the prefix is not a session cookie')
})

t.test('saveUninitialized true: honoured (anonymous requests save and get a cookie), warned once', async (t) => {
  const { url, store, warnings } = await start(t, { saveUninitialized: true })
  const res = await new Client(url).get('/public')
  t.ok(findSetCookie(res), 'a cookie for an anonymous request')
  t.equal(store.calls.set, 1, 'and a store write')
  await new Client(url).get('/public')
  const w = warnings().filter((l) => l.includes('saveUninitialized'))
  t.equal(w.length, 1)
  t.match(w[0], /guarantee lost: requests without a session cookie never touch the store/)
})

t.test('rolling true: honoured (every response re-saves and sets the cookie), warned once', async (t) => {
  const { url, store, warnings } = await start(t, { rolling: true })
  const c = new Client(url)
  await c.post('/login')
  const writes = store.writes()
  const res = await c.get('/whoami')
  t.ok(findSetCookie(res), 'the cookie is set on a read-only response')
  t.equal(store.writes(), writes + 1, 'and the session re-saved')
  const w = warnings().filter((l) => l.includes('option rolling'))
  t.equal(w.length, 1)
  t.match(w[0], /guarantee lost: read-only requests never rewrite session data/)
})

t.test('per-route cookie options (request.session.options) take effect on a read-only request', async (t) => {
  const { url, store } = await start(t, { ttl: 3600 })
  const c = new Client(url)
  await c.post('/login')

  const remember = await c.get('/remember-me')
  t.ok(Math.abs(expiresIn(findSetCookie(remember)) - 30 * 24 * 3600_000) < 5000, 'the cookie now lasts 30 days')
  t.equal(store.lastSetTtl, 30 * 24 * 3600_000, 'and so does the stored session')
  t.same((await c.get('/whoami')).body, { user: 'alice' })

  const strict = await c.get('/strict-here')
  t.equal(attr(findSetCookie(strict), 'SameSite'), 'Strict')

  const at = Date.now() + 7200_000
  const until = await c.get(`/until?at=${at}`)
  t.ok(Math.abs(expiresIn(findSetCookie(until)) - 7200_000) < 5000, `options({ expires }) ends the cookie then (${expiresIn(findSetCookie(until))} ms)`)
  t.ok(Math.abs(store.lastSetTtl - 7200_000) < 5000, 'and the stored session')
})

/** The error lines the app logged (a failed request logs its error message). */
function loggedErrors (logs: { lines: Array<{ level: number, msg: string }> }): string[] {
  return logs.lines.filter((l) => l.level >= 50).map((l) => l.msg)
}

/** Polls until `check` is true (every 50 ms, up to `limitMs`): waits for the event, not a guess. */
async function until (what: string, check: () => Promise<boolean> | boolean, limitMs = 10_000): Promise<number> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return Date.now() - started
}

t.test('cookie.priority per route: request.session.options({ priority }) reaches the cookie', async (t) => {
  const { url } = await start(t, {})
  const c = new Client(url)
  t.equal(attr(findSetCookie(await c.post('/login')), 'Priority'), undefined, 'none configured: no Priority attribute')
  const high = await c.get('/priority-here?p=high')
  t.equal(attr(findSetCookie(high), 'Priority'), 'High', 'the route\'s priority is on its Set-Cookie')

  const configured = await startApp(t, { options: { store: storeFor(t), cookie: { priority: 'low' } }, routes })
  const d = new Client(configured.url)
  t.equal(attr(findSetCookie(await d.post('/login')), 'Priority'), 'Low', 'the configured one elsewhere')
  t.equal(attr(findSetCookie(await d.get('/priority-here?p=medium')), 'Priority'), 'Medium', 'the route\'s wins on its route')

  const bad = await d.get('/priority-here?p=urgent')
  t.equal(bad.status, 500, 'an invalid per-route priority fails the request instead of vanishing')
  t.ok(loggedErrors(configured.logs).some((m) => m === 'request.session.options({ priority: "urgent" }) is not valid; accepted: \'low\', \'medium\' or \'high\''),
    'the log names the option and the accepted values')
  t.equal(findSetCookie(bad), undefined, 'and the session cookie is left as it was')
  t.same((await d.get('/whoami')).body, { user: 'alice' }, 'the session is intact')
})

t.test('per-route cookie fields @fastify/session would drop are refused, naming the field', async (t) => {
  const app = await startApp(t, { options: { store: storeFor(t) }, routes })
  const c = new Client(app.url)
  await c.post('/login')
  const signed = await c.get(`/route-option?name=signed&value=${encodeURIComponent('true')}`)
  t.equal(signed.status, 500)
  t.ok(loggedErrors(app.logs).some((m) => m.startsWith('request.session.options({ signed }) is refused: The session id is already signed')), 'a refused field says why')
  const typo = await c.get(`/route-option?name=maxage&value=${encodeURIComponent('60000')}`)
  t.equal(typo.status, 500)
  t.ok(loggedErrors(app.logs).some((m) => m === 'request.session.options({ maxage }): maxage is not a cookie option; accepted: path, domain, sameSite, httpOnly, secure, maxAge, expires, partitioned, priority'),
    'an unknown field is named, with the accepted ones')
  t.same((await c.get('/whoami')).body, { user: 'alice' }, 'the session is intact')
})

t.test('cookie.maxAge null: browser-session cookies (no Expires), the stored session still ends ttl after its last use', async (t) => {
  const { url, store } = await start(t, { ttl: 1, cookie: { maxAge: null } })
  const c = new Client(url)
  const login = findSetCookie(await c.post('/login'))
  t.ok(login !== undefined, 'the login sets the cookie')
  t.equal(attr(login, 'Expires'), undefined, 'without Expires')
  t.equal(attr(login, 'Max-Age'), undefined, 'or Max-Age: the browser drops it when it closes')
  t.equal(store.lastSetTtl, 1000, 'the store keeps the session ttl (1 s)')
  const id = store.ids.at(-1) as string

  // Sliding still happens in the store (a touch is due after a tenth of ttl), never on the cookie.
  const seen: Array<string | undefined> = []
  await until('a touch of the session', async () => {
    const res = await c.get('/whoami')
    t.same(res.body, { user: 'alice' })
    seen.push(findSetCookie(res))
    return store.lastTouchTtl === 1000
  })
  t.same(seen.filter((sc) => sc !== undefined && attr(sc, 'Expires') !== undefined), [], 'no response gave the cookie an expiry')

  const ms = await until('the stored session to lapse', async () => (await store.get(id)) === null, 10_000)
  t.pass(`left alone, the session was gone from the store ${ms} ms later`)
  t.same((await c.get('/whoami')).body, { user: null }, 'and the cookie, still in the open browser, carries no session')

  const r = new Client(url)
  await r.post('/login?name=remembered')
  const remember = findSetCookie(await r.get('/remember-me'))
  t.ok(Math.abs(expiresIn(remember) - 30 * 24 * 3600_000) < 5000, '"remember me" on one route: that session\'s cookie lasts 30 days')
  t.equal(store.lastSetTtl, 30 * 24 * 3600_000, 'and so does its record')
  const later = findSetCookie(await r.post('/visit'))
  t.ok(Math.abs(expiresIn(later) - 30 * 24 * 3600_000) < 5000, 'kept with the session on its next write')
})

t.test('per route, options({ maxAge: null }) makes that session\'s cookie a browser-session one, kept with the session', async (t) => {
  const { url, store } = await start(t, { ttl: 3600 })
  const c = new Client(url)
  t.ok(attr(findSetCookie(await c.post('/login')), 'Expires') !== undefined, 'by default the cookie lasts ttl')
  const forget = findSetCookie(await c.get('/max-age?ms=null'))
  t.ok(forget !== undefined && attr(forget, 'Expires') === undefined, 'this session\'s cookie now has no Expires')
  const next = findSetCookie(await c.post('/visit'))
  t.ok(next !== undefined && attr(next, 'Expires') === undefined, 'and keeps none on its next write')
  t.equal(store.lastSetTtl, 3600_000, 'while the store still keeps it ttl')
  t.same((await c.get('/whoami')).body, { user: 'alice' })
})

t.test('per-route expires less than a second away is honoured; one already past ends the session', async (t) => {
  const { url, store } = await start(t, { ttl: 3600 })
  const c = new Client(url)
  await c.post('/login')
  const id = store.ids.at(-1) as string
  const old = c.clone()
  const at = Date.now() + 400
  const res = await c.get(`/until?at=${at}`)
  const expires = Date.parse(attr(findSetCookie(res), 'Expires') ?? '')
  t.ok(expires <= at && expires > at - 1000, `the cookie's Expires is that time, to the second (${expires - at} ms)`)
  t.ok(store.lastSetTtl > 0 && store.lastSetTtl <= 400, `the store keeps the session that long (${store.lastSetTtl} ms), not ttl`)
  await until('the session to end in the store', async () => (await store.get(id)) === null, 5000)
  t.ok(Date.now() >= at - 50, 'not before its time') // the store's clock granularity aside
  t.same((await old.get('/whoami')).body, { user: null }, 'a browser still sending the cookie has no session')

  const d = new Client(url)
  await d.post('/login?name=dora')
  const dora = d.clone()
  const destroys = store.calls.destroy
  const past = await d.get(`/until?at=${Date.now() - 1000}`)
  t.equal(past.status, 200)
  t.equal(attr(findSetCookie(past), 'Max-Age'), '0', 'a date already past clears the cookie in that response')
  t.equal(store.calls.destroy, destroys + 1, 'and ends the session in the store, as a logout')
  t.same((await dora.get('/whoami')).body, { user: null }, 'the old cookie carries no session')

  const e = new Client(url)
  await e.post('/login?name=emil')
  const emil = e.clone()
  t.equal(attr(findSetCookie(await e.get('/max-age?ms=-1')), 'Max-Age'), '0', 'so does a negative maxAge')
  t.same((await emil.get('/whoami')).body, { user: null })
})
