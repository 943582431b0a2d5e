/**
 * --log-level / -l and pretty logs, as a fastify-cli user expects them: the flag sets the app's
 * Fastify logger (an app without one gets one, so `-l info` shows request logs) and the
 * launcher's own log; -P prints through pino-pretty (a dev dependency here).
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, eventually, CLI, APP } from './helpers/process'
import { wantsPretty } from '../lib/logs/pretty'
import { KnobError } from '../lib/config/values'

const flags = (port: number, extra: string[] = []) => ['-a', '127.0.0.1', '-p', String(port), '--graceful-timeout', '3s', ...extra]

t.test('without --log-level an app without a logger logs no requests; with -l info it does (reqId, url, status)', async (t) => {
  const quietPort = await freePort()
  const quiet = spawnServer(t, [CLI, APP, ...flags(quietPort)])
  await quiet.waitLine('listening')
  await get(quietPort, '/hello')
  quiet.signal('SIGTERM')
  await quiet.waitExit()
  t.equal(quiet.lines.filter((l) => l.req !== undefined || l.res !== undefined).length, 0, 'the app exported logger: false and gets no request logs')

  const port = await freePort()
  const p = spawnServer(t, [CLI, APP, ...flags(port, ['-l', 'info'])])
  await p.waitLine('listening')
  await get(port, '/hello')
  const incoming = await p.waitLine('incoming request')
  const completed = await p.waitLine('request completed')
  t.match(incoming, { level: 30, req: { method: 'GET', url: '/hello' } }, 'the request, at info')
  t.match(completed, { level: 30, res: { statusCode: 200 }, reqId: incoming.reqId }, 'and its completion, with the same reqId')
})

t.test('-l warn: neither the launcher nor the app logs at info; the app\'s own logger config gets the level', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-logs-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'app.js'), [
    'module.exports = async function (fastify) {',
    '  fastify.get("/", async (req) => { req.log.warn({ marker: 42 }, "app warning"); req.log.info("app info"); return "ok" })',
    '}',
    'module.exports.options = { logger: { level: "error" } }'
  ].join('\n'))
  const port = await freePort()
  const p = spawnServer(t, [CLI, 'app.js', ...flags(port, ['-l', 'warn'])], { cwd: dir })
  await eventually(async () => (await get(port, '/')).status === 200 ? true : undefined, 15_000, 'the server answers')
  const warning = await p.waitLine('app warning')
  t.equal(warning.marker, 42, 'the app logs at warn although its own config said error: the flag wins, as with fastify start -l')
  p.signal('SIGTERM')
  await p.waitExit()
  t.same(p.lines.filter((l) => (l.level as number) < 40), [], 'nothing below warn, from the launcher or the app')
})

t.test('-P: pretty lines through pino-pretty instead of JSON, in single and cluster mode', async (t) => {
  for (const mode of [[], ['--workers', '2']]) {
    const port = await freePort()
    const p = spawnServer(t, [CLI, APP, ...flags(port, ['-P', '-l', 'info', ...mode])])
    await eventually(async () => (await get(port, '/hello')).status === 200 ? true : undefined, 20_000, 'the server answers')
    await eventually(() => /request completed/.test(p.stdout()) ? true : undefined, 10_000, 'a pretty request line')
    const text = p.stdout()
    const jsonLogLines = p.lines.filter((l) => typeof l === 'object' && l !== null && 'msg' in l)
    t.equal(jsonLogLines.length, 0, `${mode.length > 0 ? 'cluster' : 'single'}: no JSON log line on stdout`)
    t.match(text, /INFO.*(listening|all workers ready)/, 'the launcher\'s lines are pretty')
    t.match(text, /INFO.*request completed/, 'and so are the app\'s')
  }
})

t.test('pretty-logs: auto = on a terminal when pino-pretty is installed; on without it is a clear error', async (t) => {
  const factory = (): never => { throw new Error('not called') }
  const installed = () => factory
  const missing = () => undefined
  t.equal(wantsPretty(undefined, true, installed), factory, 'terminal + installed: pretty')
  t.equal(wantsPretty(undefined, false, installed), undefined, 'not a terminal (a container, a pipe): JSON lines')
  t.equal(wantsPretty(undefined, true, missing), undefined, 'not installed: JSON lines, no error')
  t.equal(wantsPretty(false, true, installed), undefined, '--no-pretty-logs: JSON lines')
  t.equal(wantsPretty(true, false, installed), factory, '-P: pretty even in a pipe')
  t.throws(() => wantsPretty(true, true, missing), new KnobError('pretty-logs is on but pino-pretty is not installed; accepted: install it (npm i -D pino-pretty) or turn pretty-logs off'))
})
