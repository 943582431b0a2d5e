/**
 * Migrating from @fastify/session + connect-redis to this plugin, and rolling back, on one Redis:
 * the legacy app (exactly what its README shows: @fastify/cookie, @fastify/session, connect-redis
 * 8's RedisStore on an ioredis client) and ours run against the same private redis-server with the
 * same secret and key prefix, at the same time (a mixed fleet during a rolling deploy) and in turn.
 * A browser's cookie must work on both, its data must be readable on both, a logout on either must
 * hold on both, and no request may ever answer 5xx — in particular a cookie whose session we
 * tombstoned must read as "no session" to the legacy reader (it used to be a 500).
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { RedisStore } from 'connect-redis'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import http from 'node:http'
import expressSession from 'express-session'
import { privateRedisForFile } from './helpers/redis-server'
import { CLEAN_ENV, Client, SECRET_A, addRoutes, findSetCookie, startApp, withEnv, type Response } from './fixtures/sessions-helpers'

const shared = privateRedisForFile(t)

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

/** The app as it was before the migration: @fastify/session + connect-redis, its README's way. */
async function startLegacy (t: Test, client: unknown): Promise<string> {
  const app: FastifyInstance = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: SECRET_A,
    cookie: { secure: false },
    store: new RedisStore({ client }) as any
  })
  addRoutes(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

async function ioredisFor (t: Test): Promise<Redis> {
  const client = new Redis(shared.redis.url)
  t.teardown(() => client.disconnect())
  return client
}

/** Our app on the same Redis (REDIS_URL, default prefix `sess:` = connect-redis's). */
async function startOurs (t: Test): Promise<string> {
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: shared.redis.url })
  return (await startApp(t)).url
}

/** The same browser, now talking to another instance (the load balancer sent it elsewhere). */
function on (browser: Client, url: string): Client {
  const c = new Client(url)
  for (const [k, v] of browser.jar) c.jar.set(k, v)
  return c
}

function no5xx (t: Test, res: Response, what: string): Response {
  t.ok(res.status < 500, `${what}: ${res.status}, not 5xx${res.status >= 500 ? ` (${JSON.stringify(res.body)})` : ''}`)
  return res
}

t.test('a mixed fleet: legacy and ours on one Redis serve the same browser', async (t) => {
  const legacy = await startLegacy(t, await ioredisFor(t))
  const ours = await startOurs(t)
  mixedFleet(t, legacy, ours)
})

t.test('the same with node-redis: connect-redis and ours share one node-redis client', async (t) => {
  const client = createClient({ url: shared.redis.url })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.destroy())
  const legacy = await startLegacy(t, client)
  const ours = (await startApp(t, { options: { store: 'redis', redisClient: client as any } })).url
  mixedFleet(t, legacy, ours)
})

function mixedFleet (t: Test, legacy: string, ours: string): void {

  t.test('a session made before the migration keeps working on the new app (and back)', async (t) => {
    const browser = new Client(legacy)
    await browser.post('/login?name=alice')
    t.same(no5xx(t, await on(browser, ours).get('/whoami'), 'ours reads').body, { user: 'alice' }, 'ours reads the legacy session')
    t.same(no5xx(t, await on(browser, ours).post('/visit'), 'ours writes').body, { visits: 1 })
    t.same(no5xx(t, await on(browser, legacy).get('/visits'), 'legacy reads').body, { visits: 1 }, 'the legacy app reads what ours wrote')
    t.same(no5xx(t, await on(browser, legacy).get('/whoami'), 'legacy reads').body, { user: 'alice' }, 'and the data it wrote itself is still there')
  })

  t.test('logout on ours, then the same cookie on the legacy app: no session, never a 500', async (t) => {
    const browser = new Client(ours)
    await browser.post('/login?name=bob')
    t.same((await on(browser, legacy).get('/whoami')).body, { user: 'bob' }, 'the legacy app sees the login made on ours')
    const stolen = browser.clone() // e.g. a second tab, or someone who copied the cookie earlier
    const out = await browser.post('/logout')
    t.equal(out.status, 200)
    t.equal(await shared.raw.exists(`sess:${sessionIdOf(stolen)}`), 1, 'the id is held by a tombstone on Redis')
    const res = no5xx(t, await on(stolen, legacy).get('/whoami'), 'legacy on a tombstoned id')
    t.same(res.body, { user: null }, 'the legacy reader sees no session')
    const again = no5xx(t, await on(stolen, ours).get('/whoami'), 'ours on a tombstoned id')
    t.same(again.body, { user: null }, 'and so does ours')
    t.same((await on(stolen, legacy).post('/visit')).body, { visits: 1 }, 'the legacy app starts a fresh session for it')
    t.same((await on(stolen, legacy).get('/whoami')).body, { user: null }, 'which is not the logged-out one')
  })

  t.test('logout on the legacy app holds on ours', async (t) => {
    const browser = new Client(legacy)
    await browser.post('/login?name=carol')
    const stolen = browser.clone()
    await browser.post('/logout')
    t.same(no5xx(t, await on(stolen, ours).get('/whoami'), 'ours after a legacy logout').body, { user: null })
  })
}

/** express-session (plain node http, no express) + connect-redis, its README's way. */
async function startExpressSession (t: Test, client: unknown): Promise<string> {
  const middleware = expressSession({ secret: SECRET_A, resave: false, saveUninitialized: false, store: new RedisStore({ client }) as any })
  const server = http.createServer((req, res) => {
    middleware(req as any, res as any, () => {
      const session = (req as any).session
      const reply = (body: unknown): void => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)) }
      if (req.url?.startsWith('/login') === true) { session.user = 'frank'; reply({ user: 'frank' }); return }
      if (req.url === '/logout') { session.destroy(() => reply({ ok: true })); return }
      reply({ user: session.user ?? null })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('from express-session: cookieName connect.sid + cookiePrefix s: read its cookies, and it reads ours', async (t) => {
  const client = await ioredisFor(t)
  const express = await startExpressSession(t, client)
  const ours = (await startApp(t, { options: { store: 'redis', redisClient: client, cookieName: 'connect.sid', cookiePrefix: 's:' } })).url
  const browser = new Client(express)
  await browser.post('/login')
  t.match(decodeURIComponent(browser.jar.get('connect.sid') ?? ''), /^s:[\w-]+\.[\w+/]+$/, 'express-session\'s signed cookie')
  t.same(no5xx(t, await on(browser, ours).get('/whoami'), 'ours reads express-session\'s session').body, { user: 'frank' })

  const mine = new Client(ours)
  await mine.post('/login?name=gina')
  t.same(no5xx(t, await on(mine, express).get('/whoami'), 'express-session reads ours').body, { user: 'gina' })
  const old = mine.clone()
  await mine.post('/logout')
  t.same(no5xx(t, await on(old, express).get('/whoami'), 'express-session on our logged-out cookie').body, { user: null })
})

t.test('migration then rollback, in turn, logouts included: every answer is below 500', async (t) => {
  const client = await ioredisFor(t)
  // Before: the legacy app only.
  const before = await startLegacy(t, client)
  const alice = new Client(before)
  await alice.post('/login?name=alice')
  await alice.post('/visit')
  const dave = new Client(before)
  await dave.post('/login?name=dave')

  // Migrated: ours only. Existing cookies keep their sessions; one user logs out, one logs in.
  const ours = await startOurs(t)
  t.same((await on(alice, ours).get('/visits')).body, { visits: 1 }, 'alice keeps her session across the migration')
  const daveOnOurs = on(dave, ours)
  const daveOld = daveOnOurs.clone()
  await daveOnOurs.post('/logout')
  const erin = new Client(ours)
  await erin.post('/login?name=erin')
  await erin.post('/visit')
  await on(alice, ours).post('/visit')

  // Rolled back: the legacy app again, on everything ours wrote.
  const after = await startLegacy(t, client)
  t.same(no5xx(t, await on(alice, after).get('/visits'), 'alice after rollback').body, { visits: 2 }, 'alice\'s write on ours survives the rollback')
  t.same(no5xx(t, await on(erin, after).get('/whoami'), 'erin after rollback').body, { user: 'erin' }, 'a login made on ours survives the rollback')
  const res = no5xx(t, await on(daveOld, after).get('/whoami'), 'dave\'s logged-out cookie after rollback')
  t.same(res.body, { user: null }, 'a logout made on ours still holds after the rollback')
  t.ok(findSetCookie(res) === undefined || !findSetCookie(res)?.includes(sessionIdOf(daveOld)), 'the logged-out id is not handed back')
  await on(erin, after).post('/logout')
  t.same(no5xx(t, await on(erin, ours).get('/whoami'), 'erin on ours after a legacy logout').body, { user: null }, 'a logout made after the rollback holds on ours')
})

t.test('upgrading over logouts an earlier build of ours made (tombstone `!destroyed`): they still hold', async (t) => {
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: shared.redis.url })
  const app = await startApp(t)
  const browser = new Client(app.url)
  await browser.post('/login?name=gina')
  await browser.post('/visit')
  const key = `sess:${sessionIdOf(browser)}`
  // The earlier build logged gina out: its tombstone sits on her id for the rest of its lifetime.
  await shared.raw.set(key, '!destroyed', 'PX', 600_000)

  const res = no5xx(t, await browser.get('/whoami'), 'the logged-out cookie after the upgrade')
  t.same(res.body, { user: null }, 'reads as logged out')
  t.same((await browser.post('/visit')).body, { visits: 1 }, 'a write on that cookie starts a fresh session')
  t.not(`sess:${sessionIdOf(browser)}`, key, 'under a new id')
  t.equal(await shared.raw.get(key), '!destroyed', 'and the logged-out id stays a tombstone')
  t.same(app.logs.warnings().filter((w) => /unreadable/.test(w)), [], 'not taken for an unreadable record')
})

/** The unsigned session id in a browser's cookie jar. */
function sessionIdOf (c: Client): string {
  const signed = decodeURIComponent(c.jar.get('sessionId') ?? '')
  return signed.slice(0, signed.lastIndexOf('.'))
}
