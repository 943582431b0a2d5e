/**
 * 5xx bodies never echo internal messages; 4xx stay as Fastify makes them; 413 and 431.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { makePlan, start, request, raw } from './fixtures/server-helpers'

const app = async (fastify: any): Promise<void> => {
  fastify.get('/boom', async () => { throw new Error('db password is hunter2') })
  fastify.get('/store', async () => {
    const err: any = new Error('session store unavailable')
    err.statusCode = 503
    err.headers = { 'retry-after': '1' }
    throw err
  })
  fastify.get('/teapot', async () => { const e: any = new Error('short and stout'); e.statusCode = 418; throw e })
  fastify.post('/typed', { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } } }, async (req: any) => ({ n: req.body.n }))
  fastify.post('/echo', async (req: any) => ({ length: JSON.stringify(req.body).length }))
}

function logs (): { lines: any[], stream: Writable } {
  const lines: any[] = []
  return { lines, stream: new Writable({ write (c, _e, cb) { for (const l of String(c).split('\n')) if (l) lines.push(JSON.parse(l)); cb() } }) }
}

t.test('a 500 answers a generic body; the real error is logged', async (t) => {
  const log = logs()
  const s = await start(t, makePlan(), app, { fastifyOptions: { logger: { level: 'info', stream: log.stream } } })
  const r = await request({ port: s.port, path: '/boom' })
  t.equal(r.status, 500)
  t.equal(r.body, '{"statusCode":500,"error":"Internal Server Error","message":"Internal Server Error"}')
  t.notMatch(r.body, /hunter2/)
  const logged = log.lines.find((l) => l.level === 50)
  t.equal(logged?.err?.message, 'db password is hunter2', 'logged at error level with the message')
  t.match(logged?.err?.stack, /server-errors\.test\.ts/, 'and its stack')
})

t.test('expose-tracebacks: the body carries the stack', async (t) => {
  const s = await start(t, makePlan({}, { exposeTracebacks: true }), app)
  const r = await request({ port: s.port, path: '/boom' })
  t.equal(r.status, 500)
  const body = JSON.parse(r.body)
  t.equal(body.message, 'db password is hunter2')
  t.match(body.stack, /Error: db password is hunter2\n\s+at /)
})

t.test('an error with its own 503 and headers keeps them, with a generic message', async (t) => {
  const s = await start(t, makePlan(), app)
  const r = await request({ port: s.port, path: '/store' })
  t.equal(r.status, 503)
  t.equal(r.headers['retry-after'], '1')
  t.same(JSON.parse(r.body), { statusCode: 503, error: 'Service Unavailable', message: 'Service Unavailable' })
})

t.test('4xx stay as Fastify makes them (validation, custom 4xx, 404)', async (t) => {
  const s = await start(t, makePlan(), app)
  const v = await request({ port: s.port, path: '/typed', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":"x"}' })
  t.equal(v.status, 400)
  t.match(JSON.parse(v.body), { code: 'FST_ERR_VALIDATION', message: 'body/n must be integer' })
  const tea = await request({ port: s.port, path: '/teapot' })
  t.equal(tea.status, 418)
  t.equal(JSON.parse(tea.body).message, 'short and stout')
  const nf = await request({ port: s.port, path: '/nope' })
  t.equal(nf.status, 404)
  t.equal(JSON.parse(nf.body).message, 'Route GET:/nope not found')
})

t.test('max-request-body-size: a larger body gets 413', async (t) => {
  const s = await start(t, makePlan({}, { maxRequestBodySize: 1024 }), app)
  const ok = await request({ port: s.port, path: '/echo', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(900) }) })
  t.equal(ok.status, 200)
  const big = await request({ port: s.port, path: '/echo', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(2000) }) })
  t.equal(big.status, 413)
  t.equal(JSON.parse(big.body).code, 'FST_ERR_CTP_BODY_TOO_LARGE')
})

t.test('max-request-header-size: a larger head gets 431', async (t) => {
  const s = await start(t, makePlan({}, { maxRequestHeaderSize: 2048 }), app)
  const ok = await raw(s.port, `GET /nope HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(1500)}\r\nConnection: close\r\n\r\n`)
  t.match(ok.data, /^HTTP\/1\.1 404/, 'a head under the limit is parsed')
  const big = await raw(s.port, `GET /nope HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(3000)}\r\n\r\n`)
  t.match(big.data, /^HTTP\/1\.1 431/, 'a head over the limit gets 431')
})
