/**
 * The package as a user gets it: `npm pack`, then `npm install <tarball> fastify` in a new
 * project (fastify at the floor of our peer range, 5.0.0), and the things a Fastify user does
 * first — a TypeScript app with --import tsx in single and cluster mode, a nodenext .mts/.cts
 * consumer compiled by tsc (and arethetypeswrong on the tarball), --watch with an edit,
 * fastify-cli flags and FASTIFY_* variables, a throwing app (single and cluster), npm start + SIGTERM.
 * The install uses npm's cache first (--prefer-offline); it is bounded by the test's timeout.
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { spawnServer, freePort, get, eventually, ROOT, type LogLine } from './helpers/process'

// An install from the npm cache, a tsc run and a dozen server starts: more than tap's default
// 120 s per file on a loaded 2-core machine.
t.setTimeout(300_000)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-pack-'))
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }))
const app = path.join(tmp, 'app')
const bin = path.join(app, 'node_modules', '.bin', 'prodserver')
const sh = (cmd: string, args: string[], cwd = app): string => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 })

t.before(() => {
  // dist/ is built by `npm test`; --ignore-scripts: prepack would wipe it under the tests running beside this one.
  const tarball = path.join(tmp, sh('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp, '--silent'], ROOT).trim().split('\n').pop() as string)
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0', private: true }))
  const began = Date.now()
  sh('npm', ['install', tarball, 'fastify@5.0.0', 'tsx', 'typescript@~6.0', '@types/node@20', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'])
  fs.writeFileSync(path.join(tmp, 'tarball'), tarball)
  t.comment(`npm install of the tarball: ${Date.now() - began} ms`)
})

t.test('arethetypeswrong finds no problem in the tarball (ESM types are not CJS in disguise)', async (t) => {
  const tarball = fs.readFileSync(path.join(tmp, 'tarball'), 'utf8')
  const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'attw'), [tarball, '--format', 'ascii'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /No problems found/)
})

t.test('a nodenext .mts (ESM) and .cts (CommonJS) consumer type-check with default and named imports, and run', async (t) => {
  // The consumers npm run test:types checks against the repo, now against the installed tarball.
  for (const f of ['esm.test-d.mts', 'cjs.test-d.cts']) fs.copyFileSync(path.join(ROOT, 'types', 'consumers', f), path.join(app, f))
  // And what tsc emits from them runs: the default import is the plugin, in ESM and in CommonJS.
  const use = (kind: string, register: string): string => [
    "import Fastify from 'fastify'",
    "import sessions, { sessions as named } from 'fastify-prodserver'",
    "declare module 'fastify' { interface Session { visits?: number } }",
    'const app = Fastify()',
    `${register}app.register(sessions, { store: 'memory', secret: 'a'.repeat(32) })`,
    "app.get('/', async (request) => { request.session.set('visits', 1); return { same: sessions === named } })",
    `app.inject('/').then((r) => console.log(JSON.stringify({ kind: '${kind}', status: r.statusCode, body: r.json(), cookie: r.headers['set-cookie'] !== undefined })))`,
    ''
  ].join('\n')
  fs.writeFileSync(path.join(app, 'use-esm.mts'), use('esm', 'await '))
  fs.writeFileSync(path.join(app, 'use-cjs.cts'), use('cjs', 'void '))
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    // skipLibCheck: the consumer's use is what is checked here (our own declarations are checked
    // in full by npm run test:types).
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022', strict: true, outDir: 'out', skipLibCheck: true, types: ['node'] },
    files: ['esm.test-d.mts', 'cjs.test-d.cts', 'use-esm.mts', 'use-cjs.cts']
  }))
  const r = spawnSync(path.join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: app, encoding: 'utf8', timeout: 120_000 })
  t.equal(r.status, 0, r.stdout + r.stderr)
  for (const [kind, file] of [['esm', 'use-esm.mjs'], ['cjs', 'use-cjs.cjs']]) {
    const run = spawnSync(process.execPath, [path.join('out', file)], { cwd: app, encoding: 'utf8', timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } })
    t.equal(run.status, 0, run.stderr)
    t.same(JSON.parse(run.stdout), { kind, status: 200, body: { same: true }, cookie: true }, `${kind}: the default import registers as the plugin and sets a session cookie`)
  }
})

t.test('a TypeScript app with --import tsx: single and cluster mode', async (t) => {
  fs.writeFileSync(path.join(app, 'app.ts'), [
    "import type { FastifyInstance } from 'fastify'",
    'export default async function app (fastify: FastifyInstance): Promise<void> {',
    "  fastify.get('/', async (): Promise<{ ts: boolean, pid: number }> => ({ ts: true, pid: process.pid }))",
    '}',
    ''
  ].join('\n'))
  for (const extra of [[], ['--workers', '2']]) {
    const port = await freePort()
    const p = spawnServer(t, [bin, 'serve', 'app.ts', '--import', 'tsx', '-a', '127.0.0.1', '-p', String(port), ...extra], { cwd: app, bareNode: true })
    await p.waitLine(extra.length === 0 ? (l) => l.msg === 'listening' && l.role === 'single' : 'all workers ready', 30_000)
    const pids = new Set<number>()
    for (let i = 0; i < 4; i++) {
      const r = await get(port, '/')
      t.equal(r.json.ts, true)
      pids.add(r.json.pid)
    }
    t.equal(pids.size, extra.length === 0 ? 1 : 2, `${extra.length === 0 ? 'single' : 'cluster'} mode serves it`)
    p.signal('SIGTERM')
    t.equal((await p.waitExit(20_000)).code, 0)
  }
})

t.test('fastify-cli habits: FASTIFY_PORT / FASTIFY_ADDRESS, -l info request logs, --watch picks up an edit', async (t) => {
  fs.writeFileSync(path.join(app, 'plain.js'), "module.exports = async (f) => { f.get('/', async () => ({ v: 1 })) }\n")
  const port = await freePort()
  const p = spawnServer(t, [bin, 'serve', 'plain.js', '-w', '-l', 'info'], { cwd: app, env: { FASTIFY_PORT: String(port), FASTIFY_ADDRESS: '127.0.0.1' } })
  await p.waitLine('watching for changes', 30_000)
  await eventually(async () => (await get(port, '/').catch(() => undefined))?.json?.v === 1 ? true : undefined, 20_000, 'served on FASTIFY_PORT')
  await p.waitLine('request completed')
  fs.writeFileSync(path.join(app, 'plain.js'), "module.exports = async (f) => { f.get('/', async () => ({ v: 2 })) }\n")
  await eventually(async () => (await get(port, '/').catch(() => undefined))?.json?.v === 2 ? true : undefined, 20_000, 'the edit is served')
  p.signal('SIGTERM')
  t.equal((await p.waitExit()).code, 0)
})

t.test('errors a user meets: a throwing app shows file:line in single and cluster mode; -P without pino-pretty says to install it', async (t) => {
  fs.writeFileSync(path.join(app, 'throws.js'), 'module.exports = async function (fastify) {\n  throw new Error("no database")\n}\n')
  const p = spawnServer(t, [bin, 'serve', 'throws.js', '-p', String(await freePort())], { cwd: app })
  t.equal((await p.waitExit()).code, 1)
  t.match(p.stderr(), /^prodserver: no database\n(.|\n)*throws\.js:2:9/)
  const cluster = spawnServer(t, [bin, 'serve', 'throws.js', '--workers', '2', '-p', String(await freePort())], { cwd: app })
  t.not((await cluster.waitExit(30_000)).code, 0, 'cluster mode halts')
  t.match(cluster.stderr(), /^prodserver: worker \d+ failed to boot: no database\n(.|\n)*throws\.js:2:9/, 'with the stack too')
  const pretty = spawnSync(process.execPath, [bin, 'serve', 'throws.js', '-P'], { cwd: app, encoding: 'utf8', timeout: 30_000 })
  t.equal(pretty.status, 2)
  t.equal(pretty.stderr, 'prodserver: pretty-logs is on but pino-pretty is not installed; accepted: install it (npm i -D pino-pretty) or turn pretty-logs off\n')
})

t.test('npm start, then SIGTERM to npm: the server drains and exits', async (t) => {
  const port = await freePort()
  fs.writeFileSync(path.join(app, 'slow.js'), "module.exports = async (f) => { f.get('/', async () => { await new Promise((r) => setTimeout(r, 1000)); return { ok: true } }) }\n")
  const pkg = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'))
  pkg.scripts = { start: `prodserver serve slow.js -a 127.0.0.1 -p ${port} -l info` }
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(pkg))
  const npm = spawn('npm', ['start'], { cwd: app, detached: true, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } })
  t.teardown(() => { try { process.kill(-(npm.pid as number), 'SIGKILL') } catch {} })
  const lines: LogLine[] = []
  npm.stdout.setEncoding('utf8').on('data', (d: string) => { for (const l of d.split('\n')) { try { lines.push(JSON.parse(l)) } catch {} } })
  const listening = await eventually(() => lines.find((l) => l.msg === 'listening'), 30_000, 'listening', 50)
  const slow = get(port, '/')
  await eventually(() => lines.find((l) => l.msg === 'incoming request'), 15_000, 'the request reached the app', 20)
  process.kill(npm.pid as number, 'SIGTERM')
  t.equal((await slow).status, 200, 'the request in flight is answered')
  await eventually(() => { try { process.kill(listening.pid as number, 0); return undefined } catch { return true } }, 20_000, 'the server is gone')
  t.ok(lines.some((l) => l.msg === 'stopped'), 'after a graceful stop')
})
