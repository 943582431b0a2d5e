/**
 * Ids from a custom id generator (@fastify/session's `idGenerator`): any length from 1 to 128 in
 * the safe alphabet is stored by every store; an id a store refuses fails the request with an
 * error the caller sees (500 + a log line), never a silent "saved" (issue 10: the Redis store's set
 * with an id under 16 characters did nothing and reported nothing).
 *
 * Through @fastify/session itself, with our stores behind the callback adapter the plugin uses.
 */
import t, { type Test } from 'tap'
import path from 'node:path'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { privateRedisForFile } from './helpers/redis-server'
import { Client, SECRET_A, logCapture } from './fixtures/sessions-helpers'
import { toCallbackStore } from '../lib/sessions/adapter'
import { RedisSessionStore } from '../lib/sessions/stores/redis'
import { FileSessionStore } from '../lib/sessions/stores/file'
import { MemorySessionStore } from '../lib/sessions/stores/memory'
import type { SessionRecordStore } from '../lib/sessions/stores/types'

const server = privateRedisForFile(t)

const stores: Array<[string, (t: Test) => SessionRecordStore]> = [
  ['redis', () => new RedisSessionStore({ url: server.redis.url })],
  ['file', (t) => new FileSessionStore({ dir: path.join(t.testdir(), 'sessions'), reapIntervalMs: 0 })],
  ['memory', () => new MemorySessionStore()]
]

async function appWith (t: Test, store: SessionRecordStore, idGenerator: () => string): Promise<{ url: string, logs: ReturnType<typeof logCapture> }> {
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'info', stream: logs.stream } })
  t.teardown(async () => { await app.close(); await store.close() })
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: SECRET_A,
    idGenerator,
    saveUninitialized: false,
    cookie: { secure: false },
    store: toCallbackStore(store, { ttlMs: 60_000, timeoutMs: 1000, maxSessionBytes: 256 * 1024, log: app.log }) as any
  })
  app.post('/login', async (request) => {
    request.session.set('user', 'alice')
    return { ok: true }
  })
  app.get('/whoami', async (request) => ({ user: request.session.get('user') ?? null }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, logs }
}

let counter = 0
const shortIds = (length: number) => () => `k${String(++counter).padStart(length - 1, '0')}`.slice(-length)

for (const [kind, make] of stores) {
  t.test(`${kind} store: 8-character and 128-character ids from a custom generator log in, read and log out`, async (t) => {
    for (const length of [8, 128]) {
      const { url } = await appWith(t, make(t), shortIds(length))
      const c = new Client(url)
      t.equal((await c.post('/login')).status, 200)
      t.same((await c.get('/whoami')).body, { user: 'alice' }, `a ${length}-character id is stored and read back`)
      t.equal((await c.post('/logout')).status, 200)
      t.same((await c.get('/whoami')).body, { user: null }, 'and destroyed')
    }
  })

  t.test(`${kind} store: an id outside the alphabet or over 128 characters fails the login with a 500, not a silent success`, async (t) => {
    for (const bad of ['has.dot.inside', 'a'.repeat(129), 'slash/../x']) {
      const { url, logs } = await appWith(t, make(t), () => bad)
      const c = new Client(url)
      const res = await c.post('/login')
      t.equal(res.status, 500, `${JSON.stringify(bad.slice(0, 20))}: 500`)
      t.same(res.setCookies, [], 'no cookie for a session that was not saved')
      const line = logs.lines.find((l) => /^session set refused: session id refused: accepted ids are 1 to 128 characters of A-Z a-z 0-9 _ -; got /.test(l.msg))
      t.ok(line, 'the log says why')
      t.equal(line?.level, 50, 'at error level')
    }
  })
}
