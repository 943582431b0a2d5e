/**
 * Sending is bounded: a client that stops reading is closed after channel-timeout without write
 * progress (Waitress's channel timeout covers writes), one that keeps reading is not, and the
 * response bytes held for slow readers stay under the send budget — the slowest go first, a fast
 * reader is never the one closed. Real sockets; responses big enough that the kernel's loopback
 * buffers (a few MB) cannot hide them.
 */
import t from 'tap'
import net from 'node:net'
import path from 'node:path'
import { makePlan, start, sleep, raw } from './fixtures/server-helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const app = require(path.join(__dirname, 'fixtures', 'attack-app.js'))
const MB = 1024 * 1024

/** A client that sends one GET and reads only when told to; records what arrived and when it closed. */
class Reader {
  readonly socket: net.Socket
  received = 0
  closedAt: number | undefined
  readonly closed: Promise<void>
  readonly began = Date.now()

  constructor (port: number, urlPath: string) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('error', () => {}) // a reset is one way the server closes a stalled client
    this.socket.on('data', (d: Buffer) => { this.received += d.length })
    this.socket.pause()
    this.socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: x\r\n\r\n`)
    this.closed = new Promise((resolve) => this.socket.on('close', () => { this.closedAt = Date.now(); resolve() }))
  }

  /** Reads everything from now on. */
  drain (): void { this.socket.resume() }

  /** Reads `bytes` every `everyMs` (a slow but steady client). */
  trickle (bytes: number, everyMs: number): () => void {
    const timer = setInterval(() => {
      const chunk = this.socket.read(Math.min(bytes, this.socket.readableLength)) as Buffer | null
      if (chunk !== null) this.received += chunk.length
    }, everyMs)
    this.socket.removeAllListeners('data')
    return () => clearInterval(timer)
  }
}

async function until (what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

t.test('a client that stops reading is closed after channel-timeout without progress', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '1s', cleanupInterval: '200ms' }), app)
  const stalled = new Reader(s.port, '/big?mb=16')
  await until('the response under way', () => s.connections().active === 1)
  await until('the stalled connection closed by the server', () => s.connections().active === 0, 8000)
  const heldMs = Date.now() - stalled.began
  t.ok(heldMs >= 900, `not before channel-timeout (${heldMs} ms)`)
  stalled.drain()
  await stalled.closed
  t.ok(stalled.received < 16 * MB, `the client got only what the kernel had buffered (${(stalled.received / MB).toFixed(1)} of 16 MB)`)
})

t.test('a slow client that keeps reading is not cut, even when its response takes longer than channel-timeout', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '1s', cleanupInterval: '200ms' }), app)
  const steady = new Reader(s.port, '/big?mb=12')
  const stop = steady.trickle(256 * 1024, 50) // ~5 MB/s: 12 MB take a few seconds
  t.teardown(stop)
  await until('the whole response read', () => steady.received >= 12 * MB, 60_000)
  const tookMs = Date.now() - steady.began
  t.ok(tookMs > 1000, `the response took longer than channel-timeout (${tookMs} ms)`)
  t.equal(steady.closedAt, undefined, 'and the connection is still open')
  stop()
})

t.test('over the send budget, the connections that would take longest to drain are closed first; a fast reader never', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '60s' }, { sendBudgetBytes: 44 * MB }), app)
  // Held: 48 + 24 + 16 MB (a response counts whole until written). Over 44 MB the stalled 48 MB one
  // goes; the remaining 40 MB fit. A paused client does not notice a close: watch the server's side.
  const serverSide = new Map<number, net.Socket>()
  s.fastify.server.on('connection', (socket: net.Socket) => serverSide.set(socket.remotePort as number, socket))
  const closedByServer = (r: Reader): boolean => serverSide.get(r.socket.localPort as number)?.destroyed === true
  const biggest = new Reader(s.port, '/big?mb=48')
  const smaller = new Reader(s.port, '/big?mb=24')
  await until('both stalled responses under way', () => s.connections().active === 2)
  const fast = new Reader(s.port, '/big?mb=16')
  fast.drain()
  await until('a stalled connection closed', () => closedByServer(biggest) || closedByServer(smaller))
  t.ok(closedByServer(biggest), 'the stalled connection holding the most bytes was closed')
  await until('the fast reader done', () => fast.received >= 16 * MB)
  t.notOk(closedByServer(fast), 'the fast reader got its whole 16 MB response, and keeps its connection')
  await sleep(500)
  t.notOk(closedByServer(smaller), 'the other stalled connection fits in the budget once the biggest is gone: kept')
  for (const r of [biggest, smaller, fast]) r.socket.destroy()
})

t.test('while over the send budget, a pipelined request is answered 503 without running the app', async (t) => {
  const s = await start(t, makePlan({ channelTimeout: '60s' }, { sendBudgetBytes: 16 * MB }), app)
  const pipelined = 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
  const calm = await raw(s.port, pipelined)
  t.equal(calm.data.split('HTTP/1.1 200').length - 1, 2, 'under budget both pipelined requests are served')

  const serverSide = new Map<number, net.Socket>()
  s.fastify.server.on('connection', (socket: net.Socket) => serverSide.set(socket.remotePort as number, socket))
  // 48 MB stalled: over budget, closed; 12 MB stalled: within it, but above half of it, so the
  // episode goes on.
  const big = new Reader(s.port, '/big?mb=48')
  const held = new Reader(s.port, '/big?mb=12')
  await until('the 48 MB one closed', () => serverSide.get(big.socket.localPort as number)?.destroyed === true)
  const pressed = await raw(s.port, pipelined)
  t.match(pressed.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*hello world/, 'the first request is served')
  t.match(pressed.data, /HTTP\/1\.1 503 Service Unavailable\r\n/, 'the pipelined one gets 503')
  t.match(pressed.data, /retry-after: 1\r\n/i, 'with Retry-After')
  t.equal(serverSide.get(held.socket.localPort as number)?.destroyed, false, 'the 12 MB stalled connection, within budget, is kept')
  for (const r of [big, held]) r.socket.destroy()
})
