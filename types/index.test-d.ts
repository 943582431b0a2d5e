/**
 * Type tests for the public surface (`npm run test:types` = `tsc -p types/tsconfig.json`).
 * Every `// @ts-expect-error` line is a wrong usage that must NOT compile: if it ever compiles,
 * tsc reports the unused directive and the run fails.
 *
 * Session data is typed the way @fastify/session documents it, by merging into Fastify's `Session`
 * interface (one way, no wrapper type of ours):
 *
 *   declare module 'fastify' {
 *     interface Session { user?: { id: string, name: string } }
 *   }
 */
import Fastify from 'fastify'
import { MemoryStore } from 'express-session'
import sessions, { type SessionBackend, type SessionsOptions } from '../index'

declare module 'fastify' {
  interface Session {
    user?: { id: string, name: string }
    visits: number
  }
}

const app = Fastify()

// Registration: no options, options in code, and wrong options.
app.register(sessions)
app.register(sessions, { store: 'redis', redisUrl: 'redis://127.0.0.1:6379', ttl: '1h', cookieSecure: 'auto', bootTimeout: 2000 })
app.register(sessions, { secret: ['x'.repeat(32), 'y'.repeat(32)], cookieSecure: true, ttl: 3600, redisTimeout: '500ms' })
const opts: SessionsOptions = { store: 'file', dir: '/var/lib/app/sessions', cookieName: 'sid' }
app.register(sessions, opts)
// @fastify/session's own options, as an app already passes them.
app.register(sessions, {
  secret: 'x'.repeat(32),
  cookieName: 'sid',
  cookiePrefix: 's:',
  algorithm: 'sha512',
  cookie: { path: '/', domain: 'example.com', sameSite: 'strict', httpOnly: true, secure: 'auto', maxAge: 3_600_000, partitioned: false, priority: 'high' },
  idGenerator: () => 'x'.repeat(32),
  saveUninitialized: false,
  rolling: false
})
app.register(sessions, { secret: { sign: (v: string) => v, unsign: (v: string) => ({ valid: true, renew: false, value: v }) } })
// Any @fastify/session / express-session store object.
app.register(sessions, { store: new MemoryStore() })
app.register(sessions, { cookie: { maxAge: null } }) // a browser-session cookie
// @ts-expect-error cookie.maxAge is a number of milliseconds
app.register(sessions, { cookie: { maxAge: '1h' } })
// @ts-expect-error not a SameSite value
app.register(sessions, { cookie: { sameSite: 'loose' } })
// @ts-expect-error not a store name
app.register(sessions, { store: 'mongo' })
// @ts-expect-error cookieSecure is 'auto' | boolean
app.register(sessions, { cookieSecure: 'yes' })
// @ts-expect-error secret is a string or a list of strings
app.register(sessions, { secret: 42 })

app.get('/', async (request) => {
  // Reading is typed…
  const user = request.session.get('user')
  const name: string | undefined = user?.name
  const visits: number = request.session.visits
  // @ts-expect-error user may be undefined
  const id: string = request.session.user.id
  // @ts-expect-error no such key in Session
  request.session.get('nope')

  // …and so is writing.
  request.session.user = { id: '1', name: 'alice' }
  request.session.set('visits', visits + 1)
  // @ts-expect-error visits is a number
  request.session.set('visits', 'one')
  // @ts-expect-error id is a string
  request.session.user = { id: 1, name: 'alice' }

  await request.session.regenerate()
  await request.session.destroy()
  return { name, id }
})

// The decorator.
const backend: SessionBackend = app.sessionBackend
const kind: 'redis' | 'file' | 'memory' | 'custom' = backend.kind
const reason: string = app.sessionBackend.reason
app.sessionBackend.check().then((r) => {
  const ok: boolean = r.ok
  const latency: number | undefined = r.latencyMs
  // @ts-expect-error error is a string or undefined
  const n: number = r.error
  return [ok, latency, n, kind, reason]
})
// @ts-expect-error not a store kind
const wrongKind: SessionBackend['kind'] = 'mongo'
export { wrongKind }
