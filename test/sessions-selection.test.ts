/**
 * Which store the plugin picks, and why (DESIGN "Session store selection"), seen from outside:
 * `fastify.sessionBackend`, the one log line, registration errors, and sessions that work.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startRedis, freePort } from './helpers/redis-server'
import { defaultSessionDir } from '../lib/sessions/config'
import { CLEAN_ENV, Client, SECRET_A, registerError, startApp, withEnv } from './fixtures/sessions-helpers'

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-selection-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Login on one client, then the session is visible (proves the chosen store really works). */
async function loginWorks (t: Test, url: string): Promise<Client> {
  const c = new Client(url)
  t.equal((await c.post('/login?name=alice')).status, 200)
  t.same((await c.get('/whoami')).body, { user: 'alice' }, 'the session is kept between requests')
  return c
}

function choiceLines (logs: { lines: Array<{ msg: string }> }): string[] {
  return logs.lines.map((l) => l.msg).filter((m) => /^sessions: (memory|file|redis) store \(/.test(m))
}

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

t.test('explicit SESSION_STORE=memory', async (t) => {
  withEnv(t, { SESSION_STORE: 'memory' })
  const { app, url, logs } = await startApp(t)
  t.equal(app.sessionBackend.kind, 'memory')
  t.match(app.sessionBackend.reason, /SESSION_STORE=memory/)
  t.same(choiceLines(logs), [`sessions: memory store (${app.sessionBackend.reason})`], 'the choice is logged exactly once')
  await loginWorks(t, url)
  t.equal((await app.sessionBackend.check()).ok, true)
})

t.test('explicit SESSION_STORE=file: two instances on one directory share sessions (like two workers)', async (t) => {
  const dir = tmpDir(t)
  withEnv(t, { SESSION_STORE: 'file', SESSION_DIR: dir })
  const one = await startApp(t)
  const two = await startApp(t)
  t.equal(one.app.sessionBackend.kind, 'file')
  t.match(one.app.sessionBackend.reason, /SESSION_STORE=file/)
  const c = await loginWorks(t, one.url)
  const other = new Client(two.url)
  for (const [k, v] of c.jar) other.jar.set(k, v)
  t.same((await other.get('/whoami')).body, { user: 'alice' }, 'the other instance sees the session')
  t.equal((await one.app.sessionBackend.check()).ok, true)
})

t.test('auto with NODE_ENV=test picks memory', async (t) => {
  withEnv(t, { NODE_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:1' })
  const { app, url, logs } = await startApp(t)
  t.equal(app.sessionBackend.kind, 'memory')
  t.match(app.sessionBackend.reason, /auto: NODE_ENV=test/)
  t.equal(logs.warnings().filter((m) => /production environment/.test(m)).length, 0, 'no production warning under test')
  await loginWorks(t, url)
})

t.test('auto with nothing configured picks the file store in the per-app default directory', async (t) => {
  const dir = defaultSessionDir()
  if (!fs.existsSync(dir)) t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const { app } = await startApp(t)
  t.equal(app.sessionBackend.kind, 'file')
  t.match(app.sessionBackend.reason, /^auto: no REDIS_URL/)
  t.ok(dir.startsWith(path.join(os.tmpdir(), 'fastify-prodserver-sessions-')), dir)
  t.ok(app.sessionBackend.reason.includes(dir), app.sessionBackend.reason)
})

t.test('Redis branches (private redis-server)', async (t) => {
  const redis = await startRedis({ password: 'hunter2-secret-pw' })
  t.teardown(() => redis.stop())

  t.test('auto + reachable REDIS_URL picks Redis; check() answers with a latency', async (t) => {
    withEnv(t, { REDIS_URL: redis.url })
    const { app, url, logs } = await startApp(t, { options: { bootTimeout: 3000 } })
    t.equal(app.sessionBackend.kind, 'redis')
    t.match(app.sessionBackend.reason, /^auto: REDIS_URL redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ is configured$/)
    t.notOk(logs.lines.some((l) => JSON.stringify(l).includes('hunter2')), 'the password is in no log line')
    await loginWorks(t, url)
    const check = await app.sessionBackend.check()
    t.equal(check.ok, true)
    t.type(check.latencyMs, 'number')
  })

  t.test('explicit SESSION_STORE=redis, reachable', async (t) => {
    withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
    const { app, url } = await startApp(t)
    t.equal(app.sessionBackend.kind, 'redis')
    t.match(app.sessionBackend.reason, /^SESSION_STORE=redis \(REDIS_URL redis:\/\/:\*\*\*@/)
    await loginWorks(t, url)
  })
})

t.test('auto + unreachable REDIS_URL falls back to the file store with ONE warning', async (t) => {
  const port = await freePort()
  withEnv(t, { REDIS_URL: `redis://:topsecretpw@127.0.0.1:${port}`, SESSION_DIR: tmpDir(t) })
  const started = Date.now()
  const { app, url, logs } = await startApp(t, { options: { bootTimeout: 800 } })
  t.ok(Date.now() - started < 8000, 'boot waited about the boot timeout, not longer')
  t.equal(app.sessionBackend.kind, 'file')
  t.match(app.sessionBackend.reason, /Redis unreachable at boot within 800 ms; fell back to the file store/)
  const fallbackWarnings = logs.warnings().filter((m) => /falling back to the file store/.test(m))
  t.equal(fallbackWarnings.length, 1, 'exactly one fallback warning')
  t.match(fallbackWarnings[0], /REDIS_URL/)
  t.notOk(logs.lines.some((l) => JSON.stringify(l).includes('topsecretpw')), 'the password is in no log line')
  await loginWorks(t, url)
})

t.test('explicit redis unreachable at boot: registration fails with one line naming REDIS_URL, no password', async (t) => {
  const port = await freePort()
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: `redis://user:topsecretpw@127.0.0.1:${port}` })
  const started = Date.now()
  const { err } = await registerError({ bootTimeout: 800 })
  t.ok(err, 'registration rejected')
  t.ok(Date.now() - started < 8000, 'within about the boot timeout')
  t.match(err?.message, /REDIS_URL/)
  t.match(err?.message, /127\.0\.0\.1/)
  t.notMatch(err?.message, /topsecretpw/)
  t.notMatch(err?.message, /\n/, 'one line')
})

t.test('explicit redis without any REDIS_URL is a configuration error', async (t) => {
  withEnv(t, { SESSION_STORE: 'redis' })
  const { err } = await registerError()
  t.match(err?.message, /^SESSION_STORE=redis needs a Redis: REDIS_URL is not set; accepted: /)
})

t.test('explicit memory with PRODSERVER_WORKER_COUNT=2 is refused', async (t) => {
  withEnv(t, { SESSION_STORE: 'memory', PRODSERVER_WORKER_COUNT: '2' })
  const { err } = await registerError()
  t.match(err?.message, /^SESSION_STORE=memory is refused with 2 workers/)
  t.match(err?.message, /accepted: file or redis/)
  t.notMatch(err?.message, /\n/)
})

t.test('auto with PRODSERVER_WORKER_COUNT=2 (no test env) is fine: file store', async (t) => {
  withEnv(t, { PRODSERVER_WORKER_COUNT: '2', SESSION_DIR: tmpDir(t) })
  const { app } = await startApp(t)
  t.equal(app.sessionBackend.kind, 'file')
})

t.test('options in code override the environment', async (t) => {
  const dir = tmpDir(t)
  withEnv(t, { SESSION_STORE: 'memory', SESSION_COOKIE_NAME: 'fromenv' })
  const { app, url } = await startApp(t, { options: { store: 'file', dir, cookieName: 'fromcode' } })
  t.equal(app.sessionBackend.kind, 'file')
  t.match(app.sessionBackend.reason, /^option store=file/)
  const c = await loginWorks(t, url)
  t.same([...c.jar.keys()], ['fromcode'], 'the cookie has the name given in code')
  const records = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.json'))
  t.equal(records.length, 1, 'the session was written in the directory given in code')
})

t.test('a bad value fails registration with one line naming the variable, the value and what is accepted', async (t) => {
  withEnv(t, { SESSION_STORE: 'mongo' })
  const env = await registerError()
  t.match(env.err?.message, /^SESSION_STORE="mongo" is not valid for session-store; accepted: auto, redis, file, memory/)
  delete process.env.SESSION_STORE
  const opt = await registerError({ ttl: 'forever' })
  t.match(opt.err?.message, /^option ttl="forever" is not valid for session-ttl; accepted: a duration/)
})
