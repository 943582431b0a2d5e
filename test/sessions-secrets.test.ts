/**
 * Secrets given in code (issue 10): a Buffer is used as its bytes — never turned into text — an
 * array is a list of secrets, a string is one secret used exactly as given (comma lists are the
 * SESSION_SECRET convention), and a string that reads as a list is refused as ambiguous. Two apps
 * with different random Buffer secrets never accept each other's cookies.
 *
 * Real servers on real sockets; cookies checked against @fastify/cookie's own Signer.
 */
import t from 'tap'
import crypto from 'node:crypto'
import path from 'node:path'
import { Signer } from '@fastify/cookie'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import { CLEAN_ENV, Client, SECRET_A, registerError, startApp, withEnv } from './fixtures/sessions-helpers'
import { serve } from '../lib/serve'

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_STORE: 'memory' }))

/** The unsigned value of the session cookie a client holds. */
function cookieValue (c: Client): string {
  return decodeURIComponent(c.jar.get('sessionId') ?? '')
}

t.test('40 pairs of apps with random 48-byte Buffer secrets: every secret is accepted, no app takes the other\'s cookies', async (t) => {
  // One store for both apps of a pair: only the signature can keep them apart.
  let refused = 0
  let crossAccepted = 0
  for (let pair = 0; pair < 40; pair++) {
    const store = new MemorySessionStore()
    t.teardown(() => store.close())
    const apps = []
    for (const secret of [crypto.randomBytes(48), crypto.randomBytes(48)]) {
      try {
        const app = await startApp(t, { options: { store, secret } })
        apps.push({ app, secret })
      } catch {
        refused++
      }
    }
    if (apps.length < 2) continue
    const [one, two] = apps
    const c = new Client(one.app.url)
    await c.post(`/login?name=user${pair}`)
    const signed = cookieValue(c)
    if (new Signer([one.secret]).unsign(signed).valid !== true) t.fail(`pair ${pair}: the cookie is not signed with the Buffer's bytes`)
    const other = new Client(two.app.url)
    other.jar.set('sessionId', c.jar.get('sessionId') as string)
    if ((await other.get('/whoami')).body.user !== null) crossAccepted++
    if ((await c.get('/whoami')).body.user !== `user${pair}`) t.fail(`pair ${pair}: the app does not accept its own cookie`)
  }
  t.equal(refused, 0, 'no random Buffer secret is refused (a comma byte in it means nothing)')
  t.equal(crossAccepted, 0, 'no app accepted the other app\'s cookie')
})

t.test('Buffer.alloc(40, 0x80) and Buffer.alloc(40, 0x81) are different secrets (not both 40 U+FFFD)', async (t) => {
  const store = new MemorySessionStore()
  t.teardown(() => store.close())
  const one = await startApp(t, { options: { store, secret: Buffer.alloc(40, 0x80) } })
  const two = await startApp(t, { options: { store, secret: Buffer.alloc(40, 0x81) } })
  const c = new Client(one.url)
  await c.post('/login?name=alice')
  t.same((await c.get('/whoami')).body, { user: 'alice' })
  t.equal(new Signer([Buffer.alloc(40, 0x80)]).unsign(cookieValue(c)).valid, true, 'signed with the bytes 0x80…')
  t.equal(new Signer(['\ufffd'.repeat(40)]).unsign(cookieValue(c)).valid, false, 'not with their lossy text')
  const other = new Client(two.url)
  other.jar.set('sessionId', c.jar.get('sessionId') as string)
  t.same((await other.get('/whoami')).body, { user: null }, 'the 0x81 app does not accept the 0x80 app\'s cookie')
})

t.test('an array of Buffers is a list: the first signs, every one verifies (rotation)', async (t) => {
  const store = new MemorySessionStore()
  t.teardown(() => store.close())
  const oldKey = crypto.randomBytes(32)
  const newKey = crypto.randomBytes(32)
  const before = await startApp(t, { options: { store, secret: [oldKey] } })
  const c = new Client(before.url)
  await c.post('/login?name=alice')
  const after = await startApp(t, { options: { store, secret: [newKey, oldKey] } })
  const rotated = new Client(after.url)
  rotated.jar.set('sessionId', c.jar.get('sessionId') as string)
  t.same((await rotated.get('/whoami')).body, { user: 'alice' }, 'a cookie signed with the old Buffer still works')
  t.equal(new Signer([newKey]).unsign(cookieValue(rotated)).valid, true, 'and is re-signed with the new one')
  const mixed = await startApp(t, { options: { store, secret: [SECRET_A, newKey] } })
  const m = new Client(mixed.url)
  m.jar.set('sessionId', rotated.jar.get('sessionId') as string)
  t.same((await m.get('/whoami')).body, { user: 'alice' }, 'strings and Buffers mix in one list')
})

t.test('a string in code is one secret, used exactly as given', async (t) => {
  const store = new MemorySessionStore()
  t.teardown(() => store.close())
  const phrase = '  correct horse, battery staple; and more words  ' // a comma and spaces, one secret
  const { url } = await startApp(t, { options: { store, secret: phrase } })
  const c = new Client(url)
  await c.post('/login?name=alice')
  t.same((await c.get('/whoami')).body, { user: 'alice' })
  t.equal(new Signer([phrase]).unsign(cookieValue(c)).valid, true, 'signed with the whole string, spaces and comma included')
  t.equal(new Signer(['correct horse']).unsign(cookieValue(c)).valid, false, 'not split on the comma')
})

t.test('a string in code that reads as a comma list of secrets is refused as ambiguous', async (t) => {
  const a = 'a'.repeat(40)
  const b = 'b'.repeat(40)
  const { err } = await registerError({ store: 'memory', secret: `${a},${b}` })
  t.equal(err?.message, "option secret is a string that reads as a comma-separated list of 2 secrets; in code a string is one secret: pass several as an array (['new', 'old']), or this text through SESSION_SECRET")
  t.notOk(err?.message.includes(a), 'the secret is not echoed')
  withEnv(t, { SESSION_SECRET: `${a},${b}` })
  const env = await startApp(t)
  const c = new Client(env.url)
  await c.post('/login?name=alice')
  t.equal(new Signer([a]).unsign(cookieValue(c)).valid, true, 'the same text in SESSION_SECRET is the list a,b (the env convention)')
})

t.test('secrets that cannot be used are refused at registration, naming the option, never echoing the secret', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [Buffer.alloc(31, 7), /^option secret is a Buffer of 31 bytes; accepted: a string \(one secret, used as given\), a Buffer \(its bytes\), or an array of them; each at least 32 characters or bytes$/],
    [[crypto.randomBytes(32), Buffer.alloc(8)], /^option secret entry 2 of 2 is a Buffer of 8 bytes; accepted: /],
    [['x'.repeat(40), 'short'], /^option secret entry 2 of 2 has 5 characters; accepted: /],
    [[], /^option secret is an empty list; accepted: /],
    [[42], /^option secret entry 1 of 1 is a number; accepted: /],
    ['y'.repeat(31), /^option secret has 31 characters; accepted: /]
  ]
  for (const [secret, message] of cases) {
    const { err } = await registerError({ store: 'memory', secret: secret as string })
    t.match(err?.message, message)
    t.notMatch(err?.message ?? '', /x{20}|y{20}|short/, 'no secret in the message')
  }
})

t.test('serve() refuses a Buffer or a comma in sessionSecret: workers get SESSION_SECRET as text', async (t) => {
  const app = path.join(__dirname, 'fixtures', 'sessions-app.js')
  await t.rejects(serve({ app, port: 0, sessionSecret: crypto.randomBytes(48) } as any),
    { message: /^option sessionSecret is a Buffer, which serve\(\) can only hand to the app as SESSION_SECRET text; accepted here: strings without commas/ })
  await t.rejects(serve({ app, port: 0, sessionSecret: ['z'.repeat(40), 'one secret, with a comma in it, long enough'] } as any),
    { message: /^option sessionSecret entry 2 of 2 contains a comma/ })
})
