/**
 * Logout is never half-done (issue 10): when the store cannot destroy the session — Redis out of
 * memory under `maxmemory` + noeviction, a Redis ACL user without write rights, a read-only session
 * directory, a store object whose destroy never answers (a timeout) — the response is 503 + Retry-After and does NOT clear the cookie, so the session that
 * is still valid is not hidden from its user and the logout can be retried; once the store can
 * destroy it again, the retried logout clears the cookie and the session is gone for every copy of
 * that cookie.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { startRedis } from './helpers/redis-server'
import { spawnServer, freePort, CLI, FIXTURES } from './helpers/process'
import { CLEAN_ENV, Client, SECRET_A, startApp, withEnv, type Response } from './fixtures/sessions-helpers'

const NOBODY = 65534

t.beforeEach((t) => withEnv(t, { ...CLEAN_ENV, SESSION_SECRET: SECRET_A }))

/** The Set-Cookie lines of a response that delete the session cookie. */
function clearing (res: Response): string[] {
  return res.setCookies.filter((l) => l.startsWith('sessionId=;'))
}

/** A failed logout: 503 with Retry-After, no clearing cookie, and the session still answers. */
async function assertLogoutRefused (t: Test, user: Client, attacker: Client, name = 'alice'): Promise<void> {
  const res = await user.post('/logout')
  t.equal(res.status, 503, 'the logout answers 503')
  t.equal(res.headers.get('retry-after'), '1', 'with Retry-After')
  t.same(clearing(res), [], 'and does not clear the cookie')
  t.ok(user.jar.has('sessionId'), 'the browser keeps its cookie to retry with')
  t.match((await attacker.get('/whoami')).body, { user: name }, 'the session is still valid server-side (so the cookie was not cleared)')
}

/** A retried logout that works: the cookie is cleared and the session is gone for every copy. */
async function assertLogoutDone (t: Test, user: Client, attacker: Client): Promise<void> {
  const res = await user.post('/logout')
  t.equal(res.status, 200, 'the retried logout succeeds')
  t.equal(clearing(res).length, 1, 'and clears the cookie')
  t.notOk(user.jar.has('sessionId'), 'the browser dropped it')
  t.match((await attacker.get('/whoami')).body, { user: null }, 'a copy of the old cookie no longer works')
}

t.test('Redis maxmemory + noeviction (OOM): the logout fails with 503, the cookie stays; after memory is freed it succeeds', async (t) => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.teardown(() => redis.stop())
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
  const { url, logs } = await startApp(t)
  const user = new Client(url)
  await user.post('/login?name=alice')
  t.match((await user.get('/whoami')).body, { user: 'alice' })
  const attacker = user.clone() // someone who stole the cookie before the logout

  // An empty Redis 7 already uses ~0.9 MB: the limit goes on after the login. Then fill it up to
  // maxmemory with small keys of someone else's, until even a small write fails.
  await raw.config('SET', 'maxmemory', '1mb')
  const filler = 'f'.repeat(512)
  let oom = ''
  for (let batch = 0; batch < 100 && oom === ''; batch++) {
    const results = await raw.pipeline(Array.from({ length: 50 }, (_, i) => ['set', `filler:${batch}:${i}`, filler])).exec()
    oom = results?.find(([err]) => err !== null)?.[0]?.message ?? ''
  }
  t.match(oom, /^OOM /, 'Redis refuses writes now')
  await t.rejects(raw.set('probe', 'x'), /^OOM /, 'even a small one')

  await assertLogoutRefused(t, user, attacker)
  t.match(JSON.stringify(logs.lines.filter((l) => /destroy failed/.test(l.msg))), /OOM command not allowed/, 'the log says why (OOM)')
  t.notMatch(JSON.stringify(logs.lines), /sess:[A-Za-z0-9_-]{32}/, 'and never shows the session key')

  // The operator makes room (an empty Redis alone is close to 1 MB, so the limit is lifted).
  await raw.config('SET', 'maxmemory', '0')
  await assertLogoutDone(t, user, attacker)
})

t.test('a Redis user without write rights: the logout fails with 503 and the cookie stays; the session is still valid', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  await raw.call('ACL', 'SETUSER', 'reader', 'on', '>reader-password', '~*', '&*', '+@all', '-@write')

  withEnv(t, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
  const writer = await startApp(t)
  withEnv(t, { REDIS_URL: `redis://reader:reader-password@127.0.0.1:${redis.port}` })
  const readOnly = await startApp(t)

  const onWriter = new Client(writer.url)
  await onWriter.post('/login?name=alice')
  const user = new Client(readOnly.url)
  for (const [k, v] of onWriter.jar) user.jar.set(k, v)
  t.match((await user.get('/whoami')).body, { user: 'alice' }, 'the read-only app reads the session')
  const attacker = onWriter.clone()

  await assertLogoutRefused(t, user, attacker)
  const why = readOnly.logs.lines.filter((l) => /destroy failed/.test(l.msg))
  // Inside a script Redis 7 words NOPERM as "can't run this command".
  t.match(JSON.stringify(why), /The user executing the script can't run this command/, 'the log says why (no write permission)')
  t.notMatch(JSON.stringify(readOnly.logs.lines), /sess:[A-Za-z0-9_-]{32}/, 'and never shows the session key (ioredis puts the command args on its errors)')

  // A login (regenerate) that cannot destroy the old session does not clear its cookie either.
  const relogin = await user.post('/login?name=mallory')
  t.equal(relogin.status, 503, 'a regenerate() that cannot destroy the old session answers 503')
  t.same(clearing(relogin), [], 'and does not clear the cookie of the session still stored')
  t.match((await attacker.get('/whoami')).body, { user: 'alice' })

  // The same browser retries where the store can write: done.
  for (const [k, v] of user.jar) onWriter.jar.set(k, v)
  await assertLogoutDone(t, onWriter, attacker)
})

t.test('a read-only session directory: the logout fails with 503 and the cookie stays; writable again, it succeeds', async (t) => {
  // root ignores permission bits, so the server runs as nobody in a directory nobody owns.
  if (process.getuid?.() !== 0) t.fail('this test must run as root (it starts the server as nobody); CI does')
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-readonly-'))
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }))
  fs.chmodSync(base, 0o755)
  const dir = path.join(base, 'sessions')
  fs.mkdirSync(dir, { mode: 0o700 })
  fs.chownSync(dir, NOBODY, NOBODY)

  const port = await freePort()
  const p = spawnServer(t, [CLI, path.join(FIXTURES, 'sessions-app.js'), '--host', '127.0.0.1', '--port', String(port)], {
    uid: NOBODY,
    env: { SESSION_STORE: 'file', SESSION_DIR: dir, SESSION_SECRET: SECRET_A }
  })
  await p.waitLine((l) => /listening|ready/i.test(String(l.msg)), 20_000)
  const url = `http://127.0.0.1:${port}`
  const user = new Client(url)
  t.equal((await user.post('/login?name=alice')).status, 200)
  const attacker = user.clone()
  const shards = fs.readdirSync(dir).filter((n) => /^[0-9a-f]$/.test(n))
  const shard = shards.find((s) => fs.readdirSync(path.join(dir, s)).some((n) => n.endsWith('.json')))
  t.ok(shard, 'the session was written by the nobody server')
  const shardDir = path.join(dir, shard as string)

  fs.chmodSync(shardDir, 0o500) // read-only for its owner, nobody
  await assertLogoutRefused(t, user, attacker)
  t.ok(p.lines.some((l) => l.msg === 'session store destroy failed' && /EACCES/.test(JSON.stringify(l.err))), 'the log says why (EACCES)')

  fs.chmodSync(shardDir, 0o700)
  await assertLogoutDone(t, user, attacker)
})

t.test('a store whose destroy times out: 503 and the cookie stays; the session stays valid, also for this process; the retry works', async (t) => {
  // A @fastify/session-style store object (store: …) whose destroy never calls back while `hang` is on.
  const sessions = new Map<string, unknown>()
  let hang = false
  const store = {
    get (id: string, cb: (err: unknown, s?: unknown) => void) { cb(null, sessions.get(id) ?? null) },
    set (id: string, s: unknown, cb: (err?: unknown) => void) { sessions.set(id, JSON.parse(JSON.stringify(s))); cb() },
    destroy (id: string, cb: (err?: unknown) => void) { if (!hang) { sessions.delete(id); cb() } }
  }
  const { url, logs } = await startApp(t, { options: { store, redisTimeout: '300ms' } })
  const user = new Client(url)
  t.equal((await user.post('/login?name=alice')).status, 200)
  const attacker = user.clone()
  hang = true
  await assertLogoutRefused(t, user, attacker)
  t.ok(logs.lines.some((l) => /destroy failed/.test(l.msg) && /timed out|ETIMEDOUT/.test(JSON.stringify(l))), 'the log says why (a timeout)')
  t.equal(sessions.size, 1, 'the session is still in the store')
  hang = false
  await assertLogoutDone(t, user, attacker)
  t.equal(sessions.size, 0, 'and now it is gone from the store')
})
