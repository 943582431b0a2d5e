/**
 * drain(timeoutMs): what SIGTERM and reloads rely on.
 */
import t from 'tap'
import { makePlan, start, request, sleep, Conn } from './fixtures/server-helpers'
import { IDLE_LINGER_MS } from '../lib/server/drain'

function gatedApp () {
  let enter!: () => void
  const entered = new Promise<void>((resolve) => { enter = resolve })
  const app = async (fastify: any): Promise<void> => {
    fastify.get('/', async () => ({ hello: 'world' }))
    fastify.get('/slow', async () => { enter(); await sleep(800); return { slow: true } })
    // unref'd: the handler must not keep the test process alive once its socket is gone
    fastify.get('/forever', async () => { enter(); await new Promise((resolve) => setTimeout(resolve, 30_000).unref()); return 'late' })
  }
  return { app, entered }
}

t.test('drain: in-flight request finishes with Connection: close, idle keep-alive closes after a short linger, late requests are served', async (t) => {
  const { app, entered } = gatedApp()
  let closedHook = 0
  const s = await start(t, makePlan({ keepAliveTimeout: '60s', channelTimeout: '60s' }, { keepAliveTimeoutMs: 60_000 }), async (f: any) => {
    await app(f)
    f.addHook('onClose', async () => { closedHook = Date.now() })
  })

  const idle = new Conn(s.port)
  idle.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await idle.waitFor(/\r\n\r\n\{"hello":"world"\}/)
  t.match(idle.data, /Keep-Alive: timeout=60/, 'a keep-alive socket, idle for 60 s otherwise')

  const busy = new Conn(s.port)
  busy.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  const late = new Conn(s.port)
  await late.connected()
  late.write('GET / HTTP/1.1\r\nHost: x\r\n') // headers not finished yet: a request on its way
  await entered

  const began = Date.now()
  const drained = s.drain(5000)
  await idle.closed
  // Not at once: a keep-alive proxy may be sending on it this very moment (drain.ts, step 5).
  const idleMs = idle.closedAt! - began
  t.ok(idleMs >= IDLE_LINGER_MS - 50 && idleMs < IDLE_LINGER_MS + 1500, `idle keep-alive socket closed once idle for the linger (${idleMs} ms, linger ${IDLE_LINGER_MS} ms)`)

  late.write('\r\n')
  const lateReply = await late.waitFor(/\{"hello":"world"\}/)
  t.match(lateReply, /^HTTP\/1\.1 200/, 'a request arriving during the drain is served, not 503')
  t.match(lateReply, /\r\nConnection: close\r\n/i, 'with Connection: close')

  const busyReply = await busy.waitFor(/\{"slow":true\}/)
  t.match(busyReply, /^HTTP\/1\.1 200/, 'the in-flight request completes')
  t.match(busyReply, /\r\nConnection: close\r\n/i, 'its response closes the connection')
  await Promise.all([busy.closed, late.closed])
  t.equal(busy.error, undefined, 'closed cleanly')

  await drained
  const took = Date.now() - began
  t.ok(took >= 600 && took < 3000, `drain resolved after the slow request, well before its timeout (${took} ms)`)
  t.ok(closedHook > 0, 'the app\'s onClose hooks ran')
  t.ok(s.draining)
  await t.rejects(request({ port: s.port, path: '/' }), { code: 'ECONNREFUSED' }, 'no longer accepting')
})

t.test('drain: after timeoutMs the remaining connections are destroyed and drain resolves', async (t) => {
  const { app, entered } = gatedApp()
  const s = await start(t, makePlan(), app)
  const stuck = new Conn(s.port)
  stuck.write('GET /forever HTTP/1.1\r\nHost: x\r\n\r\n')
  await entered
  const began = Date.now()
  await s.drain(500)
  const took = Date.now() - began
  t.ok(took >= 450 && took < 3000, `resolved at the timeout (${took} ms)`)
  await stuck.closed
  t.equal(stuck.data, '', 'the stuck request got no response: its socket was destroyed')
})

t.test('drain: connections waiting at the connection limit are served, not dropped', async (t) => {
  const { app, entered } = gatedApp()
  const s = await start(t, makePlan({ connectionLimit: 1 }), app)
  const first = new Conn(s.port)
  first.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await entered
  const waiting = new Conn(s.port)
  waiting.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  for (let i = 0; i < 40 && s.connections().queued === 0; i++) await sleep(25)
  t.equal(s.connections().queued, 1, 'the second connection waits at the gate')
  const drained = s.drain(5000)
  const reply = await waiting.waitFor(/\{"hello":"world"\}/)
  t.match(reply, /^HTTP\/1\.1 200/)
  t.match(reply, /\r\nConnection: close\r\n/i)
  t.match(await first.waitFor(/\{"slow":true\}/), /^HTTP\/1\.1 200/)
  await drained
  t.same(s.connections(), { active: 0, queued: 0 })
})

t.test('drain: a busy client between two requests is answered (Connection: close), not reset', async (t) => {
  // Under load a keep-alive socket is idle only between a response and the next request; closing
  // it at that moment resets the request already on its way (ECONNRESET during reloads).
  const s = await start(t, makePlan({ keepAliveTimeout: '60s', channelTimeout: '60s' }, { keepAliveTimeoutMs: 60_000 }), async (f: any) => {
    f.get('/', async () => ({ hello: 'world' }))
  })
  const client = new Conn(s.port)
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await client.waitFor(/\{"hello":"world"\}/)
  const drained = s.drain(5000)
  await sleep(50)
  client.data = ''
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  const reply = await client.waitFor(/\{"hello":"world"\}/)
  t.match(reply, /^HTTP\/1\.1 200/, 'the next request is served')
  t.match(reply, /[Cc]onnection: close/i, 'and told to reconnect elsewhere')
  await client.closed
  await drained
})
