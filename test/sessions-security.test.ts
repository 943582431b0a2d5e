/**
 * Secrets, cookie security and warnings, as an operator or an attacker would see them.
 */
import t, { type Test } from 'tap'
import { Signer } from '@fastify/cookie'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import { CLEAN_ENV, Client, CountingStore, SECRET_A, findSetCookie, registerError, startApp, withEnv } from './fixtures/sessions-helpers'

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV }))

function sharedStore (t: Test): CountingStore {
  const store = new CountingStore(new MemorySessionStore())
  t.teardown(() => store.close())
  return store
}

t.test('NODE_ENV=production without a secret: registration fails naming SESSION_SECRET', async (t) => {
  withEnv(t, { NODE_ENV: 'production', SESSION_STORE: 'memory', PRODSERVER_INTERNAL_SESSION_SECRET: 'x'.repeat(40) })
  const { err } = await registerError()
  t.match(err?.message, /^SESSION_SECRET is required when NODE_ENV=production; accepted: /)
  t.notMatch(err?.message, /\n/, 'one line')
})

t.test('a 31-character secret is refused, naming the variable and never printing the secret', async (t) => {
  const short = 's'.repeat(31)
  withEnv(t, { SESSION_SECRET: short, SESSION_STORE: 'memory' })
  const env = await registerError()
  t.match(env.err?.message, /^SESSION_SECRET entry 1 of 1 has 31 characters; accepted: .*at least 32 characters/)
  t.notOk(env.err?.message.includes(short), 'the secret is not echoed')

  process.env.SESSION_SECRET = `${SECRET_A},${short}`
  t.match((await registerError()).err?.message, /^SESSION_SECRET entry 2 of 2 has 31 characters/, 'every entry of a list is checked (pitfall 18)')

  delete process.env.SESSION_SECRET
  t.match((await registerError({ secret: short })).err?.message, /^option secret has 31 characters/)
})

t.test('no secret outside production: a random one, ONE warning, and it is not shared', async (t) => {
  const store = sharedStore(t)
  const one = await startApp(t, { options: { store } })
  const c = new Client(one.url)
  await c.post('/login?name=alice')
  for (let i = 0; i < 3; i++) t.same((await c.get('/whoami')).body, { user: 'alice' })
  const warnings = one.logs.warnings().filter((m) => /random secret/.test(m))
  t.equal(warnings.length, 1, 'exactly one warning')
  t.match(warnings[0], /sessions will not survive a restart and are not shared between processes/)

  const two = await startApp(t, { options: { store } })
  const elsewhere = new Client(two.url)
  for (const [k, v] of c.jar) elsewhere.jar.set(k, v)
  t.same((await elsewhere.get('/whoami')).body, { user: null }, 'another process (own random secret) does not accept the cookie')
})

t.test("the launcher's shared secret (PRODSERVER_INTERNAL_SESSION_SECRET) is used by every worker, silently", async (t) => {
  withEnv(t, { PRODSERVER_INTERNAL_SESSION_SECRET: 'L'.repeat(48) })
  const store = sharedStore(t)
  const one = await startApp(t, { options: { store } })
  const two = await startApp(t, { options: { store } })
  const c = new Client(one.url)
  await c.post('/login?name=alice')
  const other = new Client(two.url)
  for (const [k, v] of c.jar) other.jar.set(k, v)
  t.same((await other.get('/whoami')).body, { user: 'alice' }, 'a session from one worker is valid on another')
  t.same([...one.logs.warnings(), ...two.logs.warnings()].filter((m) => /secret/.test(m)), [], 'no secret warning')
})

t.test('SESSION_COOKIE_SECURE=true on plain http: the login does not stick, and ONE warning says why', async (t) => {
  withEnv(t, { SESSION_SECRET: SECRET_A, SESSION_COOKIE_SECURE: 'true' })
  const store = sharedStore(t)
  const { url, logs } = await startApp(t, { options: { store }, trustProxy: true })
  const c = new Client(url)
  for (let i = 0; i < 3; i++) {
    const res = await c.post('/login?name=alice')
    t.equal(findSetCookie(res), undefined, 'no cookie over plain http')
  }
  const warnings = logs.warnings().filter((m) => /session cookie is Secure/.test(m))
  t.equal(warnings.length, 1, 'exactly one warning')
  t.match(warnings[0], /PRODSERVER_TRUSTED_PROXY/)

  const res = await c.post('/login?name=alice', { 'x-forwarded-proto': 'https' })
  t.match(findSetCookie(res), /; Secure/, 'over https (trusted proxy) the Secure cookie is set')
  t.same((await c.get('/whoami', { 'x-forwarded-proto': 'https' })).body, { user: 'alice' })
})

t.test('forged or hostile cookies never reach the store', async (t) => {
  withEnv(t, { SESSION_SECRET: SECRET_A })
  const store = sharedStore(t)
  const { url } = await startApp(t, { options: { store } })
  const forged = new Client(url)
  forged.jar.set('sessionId', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.badsignature')
  t.same((await forged.get('/whoami')).body, { user: null }, 'a bad signature is anonymous')
  const traversal = new Client(url)
  traversal.jar.set('sessionId', encodeURIComponent(new Signer([SECRET_A]).sign('../../../../etc/passwd')))
  const res = await traversal.get('/whoami')
  t.equal(res.status, 200)
  t.same(res.body, { user: null }, 'a validly signed but malformed id is anonymous, not an error')
  t.same(store.calls, { get: 0, set: 0, patch: 0, touch: 0, destroy: 0 }, 'zero store calls')
})

t.test('the memory store under NODE_ENV=production works but warns', async (t) => {
  withEnv(t, { NODE_ENV: 'production', SESSION_STORE: 'memory', SESSION_SECRET: SECRET_A })
  const { app, logs } = await startApp(t)
  t.equal(app.sessionBackend.kind, 'memory')
  t.equal(logs.warnings().filter((m) => /not designed for a production environment/.test(m)).length, 1)
})
