/**
 * recv-bytes/send-bytes high-water marks; the app's own Fastify options and plugin options.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import fp from 'fastify-plugin'
import { makePlan, start, request, raw } from './fixtures/server-helpers'

const marks = async (fastify: any): Promise<void> => {
  fastify.get('/marks', async (req: any, reply: any) => ({
    readable: req.raw.socket.readableHighWaterMark,
    writable: req.raw.socket.writableHighWaterMark,
    response: reply.raw.writableHighWaterMark
  }))
}

t.test('recv-bytes and send-bytes set the socket high-water marks, on every listen address', async (t) => {
  const s = await start(t, makePlan({}, { recvBytes: 32 * 1024, sendBytes: 128 * 1024 }, {
    kind: 'tcp', addresses: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }], backlog: 128
  }), marks)
  for (const address of s.addresses) {
    const r = JSON.parse((await request({ port: Number(new URL(address).port), path: '/marks' })).body)
    t.same(r, { readable: 32768, writable: 131072, response: 131072 }, address)
  }
})

t.test('without recv-bytes/send-bytes Node\'s defaults stay', async (t) => {
  const s = await start(t, makePlan(), marks)
  const r = JSON.parse((await request({ port: s.port, path: '/marks' })).body)
  const { getDefaultHighWaterMark } = require('node:stream')
  t.same(r, { readable: getDefaultHighWaterMark(false), writable: getDefaultHighWaterMark(false), response: getDefaultHighWaterMark(false) })
})

t.test('the app\'s Fastify options are honoured; ours win on tuned keys', async (t) => {
  const lines: any[] = []
  const stream = new Writable({ write (c, _e, cb) { for (const l of String(c).split('\n')) if (l) lines.push(JSON.parse(l)); cb() } })
  const s = await start(t, makePlan({ headersTimeout: '5s', requestTimeout: '7s', keepAliveTimeout: '3s' }, { headersTimeoutMs: 5000, requestTimeoutMs: 7000, keepAliveTimeoutMs: 3000, maxRequestBodySize: 1024 }), async (f: any) => {
    f.get('/id', async (req: any) => ({ id: req.id }))
    f.post('/len', async (req: any) => ({ n: req.body.length }))
  }, {
    fastifyOptions: { logger: { level: 'info', stream }, requestIdHeader: 'x-req', requestTimeout: 0, keepAliveTimeout: 100, bodyLimit: 10, connectionTimeout: 5 } as any
  })
  const r = await request({ port: s.port, path: '/id', headers: { 'x-req': 'abc' } })
  t.same(JSON.parse(r.body), { id: 'abc' }, 'requestIdHeader from the app options')
  t.ok(lines.some((l) => l.reqId === 'abc' && l.msg === 'incoming request'), 'the app\'s logger is used')
  const ka = await request({ port: s.port, path: '/id', headers: { connection: 'keep-alive' } })
  t.match(ka.headers['keep-alive'], /timeout=3/, 'keep-alive timeout from the plan, not the app (100 ms)')
  t.equal(s.fastify.server.requestTimeout, 7000, 'request-timeout from the plan, not the app\'s 0')
  t.equal(s.fastify.server.timeout, 0, 'connectionTimeout stays off: it would kill slow requests')
  const body = await request({ port: s.port, path: '/len', method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(500) })
  t.same(JSON.parse(body.body), { n: 500 }, 'max-request-body-size from the plan wins over bodyLimit 10')
})

t.test('the app\'s bodyLimit stays when max-request-body-size is unset', async (t) => {
  const s = await start(t, makePlan(), async (f: any) => { f.post('/len', async (req: any) => ({ n: req.body.length })) }, {
    fastifyOptions: { logger: false, bodyLimit: 100 }
  })
  const r = await raw(s.port, `POST /len HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 200\r\nConnection: close\r\n\r\n${'x'.repeat(200)}`)
  t.match(r.data, /^HTTP\/1\.1 413/)
})

t.test('the app is registered encapsulated, with its options, like fastify-cli', async (t) => {
  const plain = async (f: any, opts: any): Promise<void> => {
    f.decorate('inner', 1)
    f.get('/greet', async () => ({ greeting: opts.greeting }))
  }
  const s = await start(t, makePlan(), plain, { appOptions: { greeting: 'hi' } })
  t.same(JSON.parse((await request({ port: s.port, path: '/greet' })).body), { greeting: 'hi' })
  t.equal(s.fastify.hasDecorator('inner'), false, 'decorators stay inside the app')
  const shared = await start(t, makePlan(), fp(plain), { appOptions: { greeting: 'hey' } })
  t.equal(shared.fastify.hasDecorator('inner'), true, 'unless the app opts out with fastify-plugin')
})
