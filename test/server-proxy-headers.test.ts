/**
 * trusted-proxy, url-scheme and ident, as the app sees them.
 */
import t from 'tap'
import { makePlan, start, request, raw } from './fixtures/server-helpers'

const echo = async (fastify: any): Promise<void> => {
  fastify.get('/echo', async (req: any) => ({ headers: req.headers, rawHeaders: req.raw.rawHeaders, ip: req.ip, protocol: req.protocol, host: req.host }))
}

const spoof = {
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  forwarded: 'for=6.6.6.6;proto=https'
}

t.test('no trusted proxy: spoofed X-Forwarded-* and Forwarded never reach the app', async (t) => {
  const s = await start(t, makePlan(), echo)
  const r = JSON.parse((await request({ port: s.port, path: '/echo', headers: { ...spoof, 'x-custom': 'kept' } })).body)
  t.equal(r.headers['x-forwarded-for'], undefined, 'X-Forwarded-For stripped')
  t.equal(r.headers['x-forwarded-proto'], undefined, 'X-Forwarded-Proto stripped')
  t.equal(r.headers['x-forwarded-host'], undefined, 'X-Forwarded-Host stripped')
  t.equal(r.headers.forwarded, undefined, 'Forwarded stripped')
  t.equal(r.headers['x-custom'], 'kept', 'other headers untouched')
  const rawNames = (r.rawHeaders as string[]).filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase())
  t.notOk(rawNames.some((n) => n.startsWith('x-forwarded-') || n === 'forwarded'), `not in req.raw.rawHeaders either (${rawNames.join(', ')})`)
  t.ok(rawNames.includes('x-custom'), 'other raw headers kept')
  t.equal((r.rawHeaders as string[])[(r.rawHeaders as string[]).findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === 'x-custom') + 1], 'kept', 'in pairs')
  t.equal(r.ip, '127.0.0.1', 'request.ip is the socket peer')
  t.equal(r.protocol, 'http')
})

t.test('trusted list without the peer: headers stripped as well', async (t) => {
  const s = await start(t, makePlan({}, { trustedProxy: ['10.0.0.0/8'] }), echo)
  const r = JSON.parse((await request({ port: s.port, path: '/echo', headers: spoof })).body)
  t.equal(r.headers['x-forwarded-for'], undefined)
  t.equal(r.ip, '127.0.0.1')
  t.equal(r.protocol, 'http')
})

t.test('a trusted peer (127.0.0.1): request.ip, protocol and host follow its headers', async (t) => {
  const s = await start(t, makePlan({}, { trustedProxy: ['10.0.0.0/8', '127.0.0.1'] }), echo)
  const r = JSON.parse((await request({ port: s.port, path: '/echo', headers: { ...spoof, 'x-forwarded-for': '1.2.3.4, 5.6.7.8' } })).body)
  t.equal(r.headers['x-forwarded-for'], '1.2.3.4, 5.6.7.8', 'headers kept for the app')
  t.ok((r.rawHeaders as string[]).includes('1.2.3.4, 5.6.7.8'), 'raw headers too')
  t.equal(r.ip, '5.6.7.8', 'the address the trusted proxy saw (one hop trusted, as Waitress)')
  t.equal(r.protocol, 'https')
  t.equal(r.host, 'evil.example')
})

t.test('trusted-proxy=*: every peer is trusted, but only for one hop', async (t) => {
  const s = await start(t, makePlan({}, { trustedProxy: ['*'] }), echo)
  const r = JSON.parse((await request({ port: s.port, path: '/echo', headers: { 'x-forwarded-for': '1.2.3.4, 5.6.7.8' } })).body)
  t.equal(r.ip, '5.6.7.8', 'not the left-most, client-written entry')
})

t.test('url-scheme=https: request.protocol is https unless a trusted proxy says otherwise', async (t) => {
  const s = await start(t, makePlan({}, { urlScheme: 'https', trustedProxy: ['127.0.0.1'] }), echo)
  const plain = JSON.parse((await request({ port: s.port, path: '/echo' })).body)
  t.equal(plain.protocol, 'https', 'no proxy header → the configured scheme')
  const told = JSON.parse((await request({ port: s.port, path: '/echo', headers: { 'x-forwarded-proto': 'http' } })).body)
  t.equal(told.protocol, 'http', 'a trusted X-Forwarded-Proto wins')

  const untrusted = await start(t, makePlan({}, { urlScheme: 'https' }), echo)
  const r = JSON.parse((await request({ port: untrusted.port, path: '/echo', headers: { 'x-forwarded-proto': 'http' } })).body)
  t.equal(r.protocol, 'https', 'an untrusted peer cannot downgrade it')
})

t.test('ident sets the Server header on every response, and nothing is sent when unset', async (t) => {
  const s = await start(t, makePlan({}, { ident: 'prodserver' }), async (fastify: any) => {
    fastify.get('/ok', async () => 'ok')
    fastify.get('/boom', async () => { throw new Error('x') })
  })
  t.equal((await request({ port: s.port, path: '/ok' })).headers.server, 'prodserver', '200')
  t.equal((await request({ port: s.port, path: '/missing' })).headers.server, 'prodserver', '404')
  t.equal((await request({ port: s.port, path: '/boom' })).headers.server, 'prodserver', '500')
  const plain = await start(t, makePlan(), echo)
  const r = await raw(plain.port, 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.notMatch(r.data, /\r\nserver:/i, 'no Server header without ident')
})
