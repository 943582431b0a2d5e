/**
 * channel-timeout, cleanup-interval, keep-alive, headers-timeout and request-timeout, over real sockets.
 */
import t from 'tap'
import { makePlan, start, raw, request, sleep } from './fixtures/server-helpers'

const app = async (fastify: any): Promise<void> => {
  fastify.get('/', async () => ({ hello: 'world' }))
  fastify.get('/slow', async () => { await sleep(2500); return { slow: true } })
  fastify.post('/echo', async (req: any) => ({ got: req.body }))
}

t.test('a connection that never sends a byte is closed after channel-timeout (Node leaves it open)', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '1s', cleanupInterval: '200ms' }), app)
  const r = await raw(s.port, undefined)
  t.equal(r.error, undefined, 'closed cleanly, not reset')
  t.equal(r.data, '', 'nothing written to an idle connection')
  t.ok(r.closedAfterMs >= 900, `not before channel-timeout (${r.closedAfterMs} ms)`)
  t.ok(r.closedAfterMs < 5000, `closed within channel-timeout + sweep (${r.closedAfterMs} ms)`)
})

t.test('idle connections are swept every cleanup-interval, not continuously', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '500ms', cleanupInterval: '1500ms' }), app)
  const r = await raw(s.port, undefined)
  t.ok(r.closedAfterMs >= 1300, `waits for the first sweep at 1.5 s (${r.closedAfterMs} ms)`)
  t.ok(r.closedAfterMs < 6000, `closed at a sweep (${r.closedAfterMs} ms)`)
})

t.test('a request in flight longer than channel-timeout is never cut', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '1s', cleanupInterval: '200ms' }), app)
  const began = Date.now()
  const r = await request({ port: s.port, path: '/slow' })
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { slow: true })
  t.ok(Date.now() - began >= 2400, 'the handler really outlived channel-timeout twice over')
})

t.test('keep-alive timeout is advertised and closes the connection after the response', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '30s', keepAliveTimeout: '1s', cleanupInterval: '200ms' }, { keepAliveTimeoutMs: 1000 }), app)
  const r = await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(r.data, /^HTTP\/1\.1 200/)
  t.match(r.data, /Keep-Alive: timeout=1\r\n/i, 'advertises the keep-alive timeout')
  // Node closes at keepAliveTimeout + 1 s (what `prodserver config`'s short keep-alive warning says).
  t.ok(r.closedAfterMs >= 1900, `kept open for the keep-alive timeout + Node's 1 s (${r.closedAfterMs} ms)`)
  t.ok(r.closedAfterMs < 5000, `closed after the keep-alive timeout (+ Node's 1 s buffer) (${r.closedAfterMs} ms)`)
})

t.test('keep-alive defaults to channel-timeout, and a second request on the socket is served', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '2s', cleanupInterval: '200ms' }), app)
  const r = await new Promise<string>((resolve) => {
    const net = require('node:net')
    const c = net.connect(s.port, '127.0.0.1')
    let data = ''
    c.setEncoding('utf8')
    c.on('data', (d: string) => {
      data += d
      if (data.split('HTTP/1.1 200').length === 2) setTimeout(() => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 1200)
    })
    c.on('close', () => resolve(data))
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    setTimeout(() => c.destroy(), 8000)
  })
  t.match(r, /Keep-Alive: timeout=2\r\n/i)
  t.equal(r.split('HTTP/1.1 200').length - 1, 2, 'the socket idle 1.2 s (> cleanup-interval) was still usable')
})

t.test('slowloris: partial headers then silence get 408 and the connection closes', async (t) => {
  const s = await start(t, makePlan({ headersTimeout: '1s', requestTimeout: '2s', cleanupInterval: '200ms', channelTimeout: '30s' }), app)
  const r = await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ')
  t.match(r.data, /^HTTP\/1\.1 408/, 'answers 408 Request Timeout')
  t.ok(r.closedAfterMs >= 900 && r.closedAfterMs < 5000, `closed after headers-timeout (${r.closedAfterMs} ms)`)
})

t.test('a body that stalls past request-timeout gets 408 (Fastify would disable this)', async (t) => {
  const s = await start(t, makePlan({ headersTimeout: '1s', requestTimeout: '1500ms', cleanupInterval: '200ms', channelTimeout: '30s' }), app)
  t.equal(s.fastify.server.requestTimeout, 1500)
  const r = await raw(s.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b')
  t.match(r.data, /^HTTP\/1\.1 408/, 'answers 408')
  t.ok(r.closedAfterMs >= 1300 && r.closedAfterMs < 6000, `closed after request-timeout (${r.closedAfterMs} ms)`)
})
