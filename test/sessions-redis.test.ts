/**
 * The Redis store through the plugin, against a private redis-server: sessions shared by two
 * instances (two workers), and what users see when Redis dies or freezes: a quick 503 with
 * Retry-After and no internals, anonymous pages still up, and recovery without a restart.
 */
import t, { type Test } from 'tap'
import { startRedis, type PrivateRedis } from './helpers/redis-server'
import { CLEAN_ENV, Client, SECRET_A, findSetCookie, sleep, startApp, withEnv, type Response } from './fixtures/sessions-helpers'

const TIMEOUT_MS = 500
const SLACK_MS = 1500 // 2 shared cores: generous, yet far from ioredis's 7–160 s / endless hangs

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

async function redisFor (t: Test): Promise<PrivateRedis> {
  const redis = await startRedis({ password: 'redis-pw-do-not-leak' })
  t.teardown(() => redis.stop())
  return redis
}

function assertUnavailable (t: Test, res: Response, redis: PrivateRedis, what: string): void {
  t.equal(res.status, 503, `${what}: 503`)
  t.equal(res.headers.get('retry-after'), '1', `${what}: Retry-After`)
  t.ok(res.ms < TIMEOUT_MS + SLACK_MS, `${what}: answered in ${res.ms.toFixed(0)} ms < ${TIMEOUT_MS + SLACK_MS} ms`)
  const text = JSON.stringify(res.body)
  for (const secret of ['ECONN', 'ETIMEDOUT', '127.0.0.1', String(redis.port), 'redis-pw', 'ioredis', 'stack']) {
    t.notOk(text.includes(secret), `${what}: the body does not mention ${secret}`)
  }
}

async function until (fn: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < limitMs) {
    if (await fn()) return Date.now() - started
    await sleep(100)
  }
  throw new Error(`not within ${limitMs} ms`)
}

t.test('two instances on one Redis share sessions (like two workers or two hosts)', async (t) => {
  const redis = await redisFor(t)
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
  const one = await startApp(t)
  const two = await startApp(t)
  const c = new Client(one.url)
  await c.post('/login?name=alice')
  const onTwo = new Client(two.url)
  for (const [k, v] of c.jar) onTwo.jar.set(k, v)
  t.same((await onTwo.get('/whoami')).body, { user: 'alice' }, 'the other instance sees the login')
  t.same((await onTwo.post('/visit')).body, { visits: 1 })
  t.same((await c.get('/visits')).body, { visits: 1 }, 'and the first sees the other one\'s write')
  await onTwo.post('/logout')
  t.same((await c.get('/whoami')).body, { user: null }, 'a logout on one instance logs out everywhere')
})

t.test('Redis killed: 503 + Retry-After quickly, anonymous pages stay up, recovery after restart', async (t) => {
  const redis = await redisFor(t)
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
  const { url, app } = await startApp(t, { options: { redisTimeout: TIMEOUT_MS } })
  const c = new Client(url)
  await c.post('/login?name=alice')
  t.same((await c.get('/whoami')).body, { user: 'alice' })

  await redis.kill()
  for (let i = 1; i <= 3; i++) assertUnavailable(t, await c.get('/whoami'), redis, `cookie-bearing request ${i}`)
  assertUnavailable(t, await c.post('/visit'), redis, 'a write')
  // The browser sends its cookie everywhere: routes that never use the session must not fail.
  const cookieOnPublic = await c.get('/public')
  t.equal(cookieOnPublic.status, 200, 'a cookie-bearing request to a route that does not use the session answers 200')
  t.equal(findSetCookie(cookieOnPublic), undefined, 'and the session cookie is left alone (no clearing, no new session)')
  const anon = new Client(url)
  const pub = await anon.get('/public')
  t.equal(pub.status, 200, 'a request without a session cookie still answers 200')
  t.same(pub.body, { ok: true })
  t.equal((await app.sessionBackend.check()).ok, false, 'sessionBackend.check() reports the outage')
  t.notMatch((await app.sessionBackend.check()).error ?? '', /redis-pw/, 'check() never shows the password')

  await redis.restart() // --save "": the data is gone, the service must come back by itself
  const waited = await until(async () => (await c.get('/whoami')).status === 200, 10_000)
  t.pass(`service back ${waited} ms after the restart, without restarting the app`)
  t.same((await c.get('/whoami')).body, { user: null }, 'the old session is gone with Redis\'s data')
  await c.post('/login?name=bob')
  t.same((await c.get('/whoami')).body, { user: 'bob' }, 'login works again')
  t.equal((await app.sessionBackend.check()).ok, true)
})

t.test('Redis frozen (SIGSTOP): 503 within the timeout, never a hang; back after SIGCONT', async (t) => {
  const redis = await redisFor(t)
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
  const { url } = await startApp(t, { options: { redisTimeout: TIMEOUT_MS } })
  const c = new Client(url)
  await c.post('/login?name=alice')

  redis.freeze()
  t.teardown(() => redis.thaw())
  const results = await Promise.all([c.get('/whoami'), c.get('/whoami'), c.post('/visit')])
  results.forEach((r, i) => assertUnavailable(t, r, redis, `concurrent request ${i + 1}`))
  assertUnavailable(t, await c.get('/whoami'), redis, 'a later request')
  t.equal((await new Client(url).get('/public')).status, 200, 'anonymous pages stay up')
  const cookieOnPublic = await c.get('/public')
  t.equal(cookieOnPublic.status, 200, 'a cookie-bearing request to a route that does not use the session answers 200')
  t.ok(cookieOnPublic.ms < TIMEOUT_MS + SLACK_MS, `within the timeout (${cookieOnPublic.ms.toFixed(0)} ms)`)
  t.equal(findSetCookie(cookieOnPublic), undefined, 'and the cookie is left alone, so the login survives the outage')

  redis.thaw()
  await until(async () => (await c.get('/whoami')).status === 200, 10_000)
  t.same((await c.get('/whoami')).body, { user: 'alice' }, 'the session survived the freeze')
})
