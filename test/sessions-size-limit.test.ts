/**
 * The session-size limit (session-max-size / SESSION_MAX_SIZE / option maxSize): a save larger than
 * the limit fails THAT request with 413 and one log line, the session keeps its stored state, and
 * the same limit applies whatever the store (memory, file, Redis, a store object passed in).
 */
import t, { type Test } from 'tap'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { privateRedisForFile } from './helpers/redis-server'
import { CLEAN_ENV, Client, SECRET_A, registerError, startApp, withEnv } from './fixtures/sessions-helpers'
import { MemorySessionStore } from '../lib/sessions/stores/memory'

const server = privateRedisForFile(t)

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

declare module 'fastify' {
  interface Session { blob?: string }
}

function routes (app: FastifyInstance): void {
  app.post('/login', async (request) => {
    request.session.user = 'alice'
    return { ok: true }
  })
  // `chars` characters of `ch` (a multi-byte character counts by its UTF-8 bytes).
  app.post('/grow', async (request) => {
    const { chars, ch } = request.query as { chars: string, ch?: string }
    request.session.blob = (ch ?? 'x').repeat(Number(chars))
    return { ok: true }
  })
  app.get('/whoami', async (request) => ({ user: request.session.user ?? null, blob: request.session.blob?.length ?? null }))
}

const stores: Array<[string, (t: Test) => Record<string, unknown>]> = [
  ['memory', () => ({ SESSION_STORE: 'memory' })],
  ['file', (t) => ({ SESSION_STORE: 'file', SESSION_DIR: path.join(t.testdir(), 'sessions') })],
  ['redis', () => ({ SESSION_STORE: 'redis', REDIS_URL: server.redis.url })]
]

for (const [kind, env] of stores) {
  t.test(`${kind} store: a save over SESSION_MAX_SIZE fails that request with 413; the session keeps its stored state`, async (t) => {
    withEnv(t, { ...env(t) as Record<string, string>, SESSION_MAX_SIZE: '4kb' })
    const { url, logs } = await startApp(t, { routes })
    const c = new Client(url)
    t.equal((await c.post('/login')).status, 200)
    // The stored JSON holds the data plus the cookie fields (~60 bytes): 3000 characters fit in 4 KB.
    t.equal((await c.post('/grow?chars=3000')).status, 200, 'a session under the limit is saved')
    t.same((await c.get('/whoami')).body, { user: 'alice', blob: 3000 })

    const cookieBefore = [...c.jar]
    const big = await c.post('/grow?chars=5000')
    t.equal(big.status, 413, 'over the limit: 413')
    t.match(big.body, { code: 'FST_SESSION_TOO_LARGE', message: /^Session too large to save: at least 50\d\d bytes, limit 4096 bytes$/ })
    t.same(big.setCookies, [], 'no cookie change')
    t.same([...c.jar], cookieBefore)
    t.same((await c.get('/whoami')).body, { user: 'alice', blob: 3000 }, 'the stored session is the last one that fitted')

    // 2000 three-byte characters are 6000 bytes: the limit is in bytes, not characters.
    const euros = await c.post('/grow?chars=2000&ch=%E2%82%AC')
    t.equal(euros.status, 413, '2000 × € (6000 UTF-8 bytes) is over 4 KB')
    t.match(euros.body, { message: /^Session too large to save: 60\d\d bytes, limit 4096 bytes$/ }, 'measured exactly when the lengths alone do not tell')

    const lines = logs.lines.filter((l) => /^session not saved: (at least )?\d+ bytes, over session-max-size \(4096 bytes; SESSION_MAX_SIZE\); the request fails with 413$/.test(l.msg))
    t.equal(lines.length, 2, 'one log line per refused save (not one per onSend pass)')
    t.equal(lines[0].level, 40)

    const other = new Client(url)
    t.equal((await other.post('/login')).status, 200, 'other users are not affected')
    t.same((await other.get('/whoami')).body, { user: 'alice', blob: null })
  })
}

t.test('a store object passed in code gets the same limit; option maxSize overrides the environment', async (t) => {
  withEnv(t, { SESSION_MAX_SIZE: '1mb' })
  const store = new MemorySessionStore()
  t.teardown(() => store.close())
  const { url } = await startApp(t, { options: { store, maxSize: '2kb' }, routes })
  const c = new Client(url)
  await c.post('/login')
  t.equal((await c.post('/grow?chars=1500')).status, 200)
  t.equal((await c.post('/grow?chars=2100')).status, 413, 'maxSize: "2kb" from code wins over SESSION_MAX_SIZE=1mb')
})

t.test('the default limit is 256 KB', async (t) => {
  withEnv(t, { SESSION_STORE: 'memory' })
  const { url } = await startApp(t, { routes })
  const c = new Client(url)
  await c.post('/login')
  t.equal((await c.post(`/grow?chars=${250 * 1024}`)).status, 200, '250 KB is saved')
  t.equal((await c.post(`/grow?chars=${257 * 1024}`)).status, 413, '257 KB is refused')
})

t.test('a bad SESSION_MAX_SIZE fails the registration with one line naming it', async (t) => {
  withEnv(t, { SESSION_STORE: 'memory', SESSION_MAX_SIZE: 'lots' })
  const { err } = await registerError()
  t.equal(err?.message, 'SESSION_MAX_SIZE="lots" is not valid for session-max-size; accepted: a size in bytes, or with a kb/mb/gb suffix from 1024 to 67108864')
  process.env.SESSION_MAX_SIZE = '100'
  t.match((await registerError()).err?.message, /^SESSION_MAX_SIZE="100" is not valid/, 'below 1 KB is refused')
})
