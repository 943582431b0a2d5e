/**
 * TypeScript apps: `--import tsx` (and any --import/--require preload) applies to the single
 * server process and to every cluster worker, reloads included; without a loader, a node that
 * strips types serves .mts/.ts by itself, and one that cannot says how (--import tsx).
 * The apps live in a temp project whose node_modules is this repo's (tsx is a dev dependency).
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnServer, freePort, get, eventually, ROOT, type ServerProcess } from './helpers/process'

const BIN = path.join(ROOT, 'dist', 'lib', 'cli.js')
const stripsTypes = Boolean((process.features as { typescript?: unknown }).typescript)

function project (t: Tap): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-ts-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  fs.writeFileSync(path.join(dir, 'app.ts'), [
    "import type { FastifyInstance } from 'fastify'",
    'interface Hello { lang: string, pid: number, preloaded: string | null }',
    'export default async function app (fastify: FastifyInstance): Promise<void> {',
    "  fastify.get('/', async (): Promise<Hello> => ({ lang: 'ts', pid: process.pid, preloaded: process.env.PRELOADED ?? null }))",
    "  fastify.get('/slow', async (): Promise<{ slow: boolean }> => { await new Promise((resolve) => setTimeout(resolve, 800)); return { slow: true } })",
    '}',
    ''
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'preload.cjs'), "process.env.PRELOADED = 'by --require ' + process.pid\n")
  return dir
}
type Tap = tap.Test

function serve (t: Tap, dir: string, port: number, args: string[]): ServerProcess {
  return spawnServer(t, [BIN, 'serve', 'app.ts', '-a', '127.0.0.1', '-p', String(port), '--graceful-timeout', '5s', ...args], { cwd: dir, bareNode: true })
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('without a loader: served by a node that strips types, otherwise one clear line that says --import tsx', async (t) => {
  const dir = project(t)
  const port = await freePort()
  const p = serve(t, dir, port, [])
  if (stripsTypes) {
    await p.waitLine('listening')
    t.match((await get(port, '/')).json, { lang: 'ts' }, `node ${process.versions.node} strips the types itself`)
    // ESM syntax in a .ts of a package that says CommonJS is the case node cannot serve.
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "commonjs" }\n')
    const cjs = serve(t, dir, await freePort(), [])
    t.equal((await cjs.waitExit()).code, 1)
    t.match(cjs.stderr(), /app\.ts uses ESM syntax but its package is CommonJS: rename it to \.mts, or set "type": "module" in package\.json, or use a loader: prodserver serve app\.ts --import tsx/, 'says what to change')
    // Syntax that stripping cannot erase (an enum) needs a loader, and the error says which.
    fs.writeFileSync(path.join(dir, 'enum.mts'), "enum Lang { Ts }\nexport default async function app (): Promise<void> { void Lang.Ts }\n")
    const withEnum = spawnServer(t, [BIN, 'serve', 'enum.mts', '-p', '0'], { cwd: dir, bareNode: true })
    t.equal((await withEnum.waitExit()).code, 1)
    t.match(withEnum.stderr(), /^prodserver: cannot load app module enum\.mts: .*enum.*; node's type stripping cannot run this syntax \(enum, namespace, parameter properties\); use a loader: prodserver serve enum\.mts --import tsx/, 'an enum: says to use a loader')
  } else {
    const exit = await p.waitExit()
    t.equal(exit.code, 1)
    t.match(p.stderr(), new RegExp(`^prodserver: cannot load app module app\\.ts: .*; node ${process.versions.node.replace(/\./g, '\\.')} does not run TypeScript by itself: prodserver serve app\\.ts --import tsx \\(after npm i -D tsx\\)`), 'says how')
  }
})

t.test('single mode --import tsx --require ./preload.cjs: the server process loads both; SIGTERM to the launcher drains it', async (t) => {
  const dir = project(t)
  const port = await freePort()
  const p = serve(t, dir, port, ['--import', 'tsx', '-r', './preload.cjs', '-l', 'info'])
  const listening = await p.waitLine((l) => l.msg === 'listening' && l.role === 'single')
  const hello = (await get(port, '/')).json
  t.match(hello, { lang: 'ts' }, 'the TypeScript app answers')
  t.equal(hello.preloaded, `by --require ${hello.pid}`, 'the preload ran in the process that serves')
  t.equal(listening.pid, hello.pid)
  t.not(hello.pid, p.pid, 'a server process started with the loader flags, under the launcher')

  const slow = get(port, '/slow')
  await p.waitLine((l) => l.msg === 'incoming request' && (l.req as { url?: string })?.url === '/slow')
  p.signal('SIGTERM')
  t.equal((await slow).status, 200, 'the request in flight is answered')
  const exit = await p.waitExit()
  t.equal(exit.code, 0, 'the launcher exits 0 with the server')
  t.ok(p.lines.some((l) => l.msg === 'shutdown: draining' && l.pid === hello.pid), 'the server drained')
  t.notOk(alive(hello.pid), 'no server process left behind')
})

t.test('cluster mode --import tsx --require ./preload.cjs: every worker has both, and so do the workers of a reload', async (t) => {
  const dir = project(t)
  const port = await freePort()
  const p = serve(t, dir, port, ['--workers', '2', '--import', 'tsx', '--require', './preload.cjs'])
  await p.waitLine('all workers ready', 30_000)
  const seen = async (): Promise<Map<number, string>> => {
    const workers = new Map<number, string>()
    for (let i = 0; i < 6; i++) {
      const r = (await get(port, '/')).json
      workers.set(r.pid, r.preloaded)
    }
    return workers
  }
  const before = await seen()
  t.equal(before.size, 2, 'two workers serve the TypeScript app')
  for (const [pid, preloaded] of before) t.equal(preloaded, `by --require ${pid}`, `worker ${pid} ran the preload`)

  p.signal('SIGHUP')
  await p.waitLine('reload done', 30_000)
  const after = await eventually(async () => {
    const w = await seen()
    return [...w.keys()].every((pid) => !before.has(pid)) ? w : undefined
  }, 15_000, 'only new workers answer')
  for (const [pid, preloaded] of after) t.equal(preloaded, `by --require ${pid}`, `reloaded worker ${pid} ran the preload and serves TypeScript`)
})

t.test('a .mts app (ESM TypeScript): served with --import tsx, and by itself where node strips types', async (t) => {
  const dir = project(t)
  fs.writeFileSync(path.join(dir, 'app.mts'), [
    "import type { FastifyInstance } from 'fastify'",
    "const lang: string = 'mts'",
    'export default async function app (fastify: FastifyInstance): Promise<void> {',
    '  fastify.get(\'/\', async () => ({ lang }))',
    '}',
    ''
  ].join('\n'))
  const runs = stripsTypes ? [['--import', 'tsx'], []] : [['--import', 'tsx']]
  for (const extra of runs) {
    const port = await freePort()
    const p = spawnServer(t, [BIN, 'serve', 'app.mts', '-a', '127.0.0.1', '-p', String(port), ...extra], { cwd: dir, bareNode: true })
    await p.waitLine('listening')
    t.same((await get(port, '/')).json, { lang: 'mts' }, extra.length > 0 ? 'with tsx' : `node ${process.versions.node} by itself`)
    p.signal('SIGTERM')
    t.equal((await p.waitExit()).code, 0)
  }
})
