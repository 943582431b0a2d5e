/**
 * What the connection limit protects when it is full and connections wait: slots are for complete
 * requests. Connections without one (silent, partial headers, a body trickling in) make room first,
 * then idle keep-alive ones; a request in flight is never cut; time spent waiting counts against
 * headers-timeout. Real sockets against a real server (the slow-HTTP attack tests use slowhttptest).
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import { makePlan, start, request, sleep, Conn, raw, type Reply } from './fixtures/server-helpers'

const app = async (fastify: any): Promise<void> => {
  fastify.get('/', async () => ({ hello: 'world' }))
  fastify.get('/slow', async (req: any) => { await sleep(Number(req.query.ms ?? 1500)); return { slow: true } })
  fastify.post('/echo', async (req: any) => ({ length: String(req.body).length }))
}

/** Longer than the gate's grace (100 ms): a connection this old has had its chance to send a request. */
const SETTLE_MS = 300

async function until (what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** A newcomer that keeps its connection (keep-alive), so the slot it took stays taken. */
function keepingNewcomer (t: { teardown (fn: () => void): void }, port: number): Promise<Reply> {
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  return request({ port, path: '/', agent })
}

/** After SETTLE_MS a newcomer arrives at the full gate and is served; `goes` is closed to make room, `stays` is not. */
async function newcomerMakesRoom (t: Test, port: number, goes: Conn, stays: Conn | undefined, why: string): Promise<void> {
  await sleep(SETTLE_MS)
  t.equal((await keepingNewcomer(t, port)).status, 200, 'a newcomer at the full gate is served')
  await goes.closed
  t.pass(why)
  if (stays !== undefined) t.equal(stays.closedAt, undefined, 'one connection closed per newcomer: the next in line is still open')
}

t.test('a full gate closes the connections without a complete request, oldest first; a request in flight is never cut', async (t) => {
  const s = await start(t, makePlan({ connectionLimit: 4, headersTimeout: '60s' }), app)
  const silent = new Conn(s.port)
  await silent.connected()
  await sleep(50)
  const slowloris = new Conn(s.port)
  slowloris.write('GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ')
  await sleep(50)
  const slowBody = new Conn(s.port)
  slowBody.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b')
  const inFlight = request({ port: s.port, path: '/slow?ms=2000' })
  await until('4 admitted connections', () => s.connections().active === 4)

  await newcomerMakesRoom(t, s.port, silent, slowloris, 'the oldest connection without a request (silent) made room')
  await newcomerMakesRoom(t, s.port, slowloris, slowBody, 'then the connection with partial headers')
  await newcomerMakesRoom(t, s.port, slowBody, undefined, 'then the one whose body is still trickling in: not a complete request either')
  t.equal(silent.data + slowloris.data + slowBody.data, '', 'nothing was answered to them')

  const slow = await inFlight
  t.equal(slow.status, 200, 'the request in flight all along was answered')
  t.same(JSON.parse(slow.body), { slow: true })
})

t.test('idle keep-alive connections make room only after those without a request', async (t) => {
  const s = await start(t, makePlan({ connectionLimit: 3, headersTimeout: '60s' }), app)
  const keepAlive = new Conn(s.port)
  keepAlive.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await keepAlive.waitFor(/\{"hello":"world"\}/)
  const silent = new Conn(s.port)
  await silent.connected()
  const inFlight = request({ port: s.port, path: '/slow?ms=2000' })
  await until('3 admitted connections', () => s.connections().active === 3)

  await newcomerMakesRoom(t, s.port, silent, keepAlive, 'a silent connection goes before an idle keep-alive one (which did send a request)')
  await newcomerMakesRoom(t, s.port, keepAlive, undefined, 'then the idle keep-alive connection makes room')
  t.equal(keepAlive.data.split('HTTP/1.1 200').length - 1, 1, 'it had its response first')
  t.equal((await inFlight).status, 200, 'the request in flight was never the one to go')
})

t.test('when every slot holds a request in flight, newcomers wait instead of anyone being cut', async (t) => {
  const s = await start(t, makePlan({ connectionLimit: 2, headersTimeout: '60s' }), app)
  const busy = [request({ port: s.port, path: '/slow?ms=1200' }), request({ port: s.port, path: '/slow?ms=1200' })]
  await until('2 admitted connections', () => s.connections().active === 2)
  const began = Date.now()
  const waiting = await request({ port: s.port, path: '/' })
  t.equal(waiting.status, 200, 'the newcomer is served once a slot frees')
  t.ok(Date.now() - began >= 700, `it waited for a request to finish (${Date.now() - began} ms)`)
  t.same((await Promise.all(busy)).map((r) => r.status), [200, 200], 'both requests in flight completed')
})

t.test('time spent waiting for a slot counts against headers-timeout: a connection still waiting gets 408', async (t) => {
  const s = await start(t, makePlan({ connectionLimit: 1, headersTimeout: '1s', requestTimeout: '5s', cleanupInterval: '200ms' }), app)
  const busy = request({ port: s.port, path: '/slow?ms=3000' })
  await until('the slot taken', () => s.connections().active === 1)
  const waited = await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(waited.data, /^HTTP\/1\.1 408 Request Timeout/, 'answered 408, as node:http answers a late request head')
  t.ok(waited.closedAfterMs >= 900, `not before headers-timeout (${waited.closedAfterMs} ms)`)
  t.ok(waited.closedAfterMs < 2500, `closed once its wait reached headers-timeout, not when the slot freed at 3 s (${waited.closedAfterMs} ms)`)
  t.equal((await busy).status, 200, 'the request holding the slot was not disturbed')
})

t.test('a connection admitted after waiting has only the rest of headers-timeout for its request head', async (t) => {
  const s = await start(t, makePlan({ connectionLimit: 1, headersTimeout: '2500ms', requestTimeout: '5s', cleanupInterval: '200ms' }), app)
  const busy = request({ port: s.port, path: '/slow?ms=2000' })
  await until('the slot taken', () => s.connections().active === 1)
  const partial = await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ')
  t.equal((await busy).status, 200, 'the request holding the slot finished at ~2 s and let it in')
  t.match(partial.data, /^HTTP\/1\.1 408/, 'answered 408')
  t.ok(partial.closedAfterMs >= 2300, `not before headers-timeout from accept (${partial.closedAfterMs} ms)`)
  t.ok(partial.closedAfterMs < 4000, `counted from accept (~2.5 s), not from admission (~4.5 s) (${partial.closedAfterMs} ms)`)
})
