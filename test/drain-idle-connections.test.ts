/**
 * A connection with no request in flight never holds up a stop or a reload: one that never sent a
 * byte (a browser's preconnect) and one idle between requests (a keep-alive client or proxy pool).
 * On a stop they are closed once idle for a moment; on a reload they move to a live worker and
 * keep working — the client's next request on the same connection is answered by the new code.
 */
import t, { type Test } from 'tap'
import path from 'node:path'
import { pidsServing, ROOT, type ServerProcess } from './helpers/process'
import { serveCli } from './helpers/serve-cli'
import { Conn } from './fixtures/server-helpers'

const APP = path.join(ROOT, 'test', 'fixtures', 'proxy-app.js')
/** Far above what the drain should take, so a drain that waits for it is obvious. */
const GRACEFUL = ['--graceful-timeout', '20s']

async function serve (t: Test, extra: string[]): Promise<{ p: ServerProcess, port: number }> {
  return await serveCli(t, APP, ['--keep-alive-timeout', '75s', ...GRACEFUL, ...extra])
}

/** A connection that never sends a byte, and one idle after a keep-alive request. */
async function idleClients (port: number): Promise<{ silent: Conn, keptAlive: Conn, firstPid: number }> {
  const silent = new Conn(port)
  await silent.connected()
  const keptAlive = new Conn(port)
  keptAlive.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  const reply = await keptAlive.waitFor(/\r\n\r\n\{"pid":\d+\}/)
  const firstPid = Number(/"pid":(\d+)/.exec(reply)?.[1])
  keptAlive.data = ''
  // Both sit in the server's accepted set before the signal.
  await new Promise((resolve) => setTimeout(resolve, 200))
  return { silent, keptAlive, firstPid }
}

async function stopsPromptly (t: Test, extra: string[]): Promise<void> {
  const { p, port } = await serve(t, extra)
  const { silent, keptAlive } = await idleClients(port)
  const began = Date.now()
  p.signal('SIGTERM')
  const exit = await p.waitExit(15_000)
  const tookMs = Date.now() - began
  t.equal(exit.code, 0, 'clean exit')
  // The drain closes them once idle for its linger (500 ms); the process exit comes right after.
  t.ok(tookMs < 3000, `SIGTERM with a silent and an idle keep-alive connection open: exited in ${tookMs} ms (graceful-timeout 20 s)`)
  await Promise.all([silent.closed, keptAlive.closed])
  t.equal(keptAlive.data, '', 'the idle connection was closed without a stray response')
}

t.test('single process: SIGTERM is not held up by a silent or an idle connection', (t) => stopsPromptly(t, []))

t.test('cluster: SIGTERM is not held up by a silent or an idle connection', (t) => stopsPromptly(t, ['--workers', '2']))

t.test('cluster: on SIGHUP silent and idle connections move to the new workers and keep working', async (t) => {
  const { p, port } = await serve(t, ['--workers', '2'])
  const old = await pidsServing(port)
  const { silent, keptAlive, firstPid } = await idleClients(port)
  t.ok(old.has(firstPid))

  p.signal('SIGHUP')
  await p.waitLine('reload done', 30_000)
  // Each old worker's drain ended at once: nothing was waiting for its idle connections.
  for (const pid of old) {
    const drainAt = p.lines.find((l) => l.msg === 'worker draining' && l.worker === pid)?.time as number
    const exitAt = p.lines.find((l) => l.msg === 'worker exited' && l.worker === pid)?.time as number
    t.ok(exitAt - drainAt < 2000, `old worker ${pid} drained in ${exitAt - drainAt} ms`)
  }

  t.equal(silent.closedAt, undefined, 'the silent connection is still open')
  t.equal(keptAlive.closedAt, undefined, 'the idle keep-alive connection is still open')
  silent.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  keptAlive.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  for (const [name, conn] of [['silent', silent], ['kept-alive', keptAlive]] as const) {
    const reply = await conn.waitFor(/\r\n\r\n\{"pid":\d+\}/)
    t.match(reply, /^HTTP\/1\.1 200 /, `the ${name} connection's first request after the reload is answered`)
    const pid = Number(/"pid":(\d+)/.exec(reply)?.[1])
    t.notOk(old.has(pid), `by a new worker (${pid})`)
  }
})
