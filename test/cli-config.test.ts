/**
 * The `prodserver` binary as a user runs it: a real process from dist/ (build first), with a
 * controlled environment. config --json, the readable report, --help, --version, exit code 2.
 */
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { KNOBS } from '../lib/config/knobs'

const CLI = path.join(__dirname, '..', 'dist', 'lib', 'cli.js')
const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs the CLI with only PATH inherited, so a developer's PRODSERVER_* cannot change the result. */
function cli (args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.before(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.json)`)
})

/** Fixed resources, so the numbers do not depend on the machine running the tests. */
const SEED_EXAMPLE_1 = { PRODSERVER_CPUS: '4', PRODSERVER_MEMORY_MB: '2048' }

t.test('config --json prints only JSON with the contract keys', async (t) => {
  const r = cli(['config', '--json'], { ...SEED_EXAMPLE_1, WAITRESS_CHANNEL_TIMEOUT: '90' })
  t.equal(r.code, 0, r.stderr)
  const plan = JSON.parse(r.stdout)
  for (const key of ['mode', 'workers', 'threads', 'resources', 'server', 'listen', 'sessions', 'sources']) t.ok(key in plan, key)
  t.same([plan.mode, plan.workers, plan.threads], ['single', 1, 9])
  t.same([plan.resources.cpus, plan.resources.memoryMb], [4, 2048])
  t.equal(plan.resources.source, 'override (PRODSERVER_CPUS, PRODSERVER_MEMORY_MB)')
  t.equal(plan.server.channelTimeoutMs, 90_000)
  t.equal(plan.sources['channel-timeout'], 'env WAITRESS_CHANNEL_TIMEOUT')
  t.equal(plan.sources.port, 'default')
  t.equal(plan.sources.workers, 'single-process mode')
  t.equal(r.stderr, '')
})

t.test('config --json with flags: cluster sizing from the seed formula, flags beat env', async (t) => {
  const r = cli(['config', '--json', '--cluster', '--port=9001', '--threads', '4'], { PRODSERVER_CPUS: '4', PRODSERVER_MEMORY_MB: '1024', PORT: '7000' })
  t.equal(r.code, 0, r.stderr)
  const plan = JSON.parse(r.stdout)
  t.same([plan.mode, plan.workers, plan.threads], ['cluster', 1, 4]) // seed Example 3
  t.same(plan.listen.addresses, [{ host: '0.0.0.0', port: 9001 }])
  t.equal(plan.sources.port, '--port')
  t.equal(plan.sources.threads, '--threads')
})

t.test('secrets and Redis passwords never reach the output', async (t) => {
  const secret = 's'.repeat(40)
  const r = cli(['config', '--json'], { ...SEED_EXAMPLE_1, SESSION_SECRET: secret, REDIS_URL: 'redis://app:hunter2@cache:6379' })
  t.equal(r.code, 0, r.stderr)
  t.notMatch(r.stdout, secret)
  t.notMatch(r.stdout, 'hunter2')
  t.equal(JSON.parse(r.stdout).sessions.expected, 'redis')
})

t.test('the readable report shows where resources came from, each formula step and every knob', async (t) => {
  const r = cli(['config'], { ...SEED_EXAMPLE_1, WAITRESS_ASYNCORE_USE_POLL: '1' })
  t.equal(r.code, 0, r.stderr)
  for (const line of ['CPU-based: (4 * 2) + 1 = 9', 'RAM-based: 2048 / 200 = 10', 'Optimal: min(9, 10) = 9', 'Single process: 9 threads']) {
    t.match(r.stdout, line)
  }
  t.match(r.stdout, 'override (PRODSERVER_CPUS, PRODSERVER_MEMORY_MB)')
  t.match(r.stdout, /keep-alive-timeout\s+120s\s+= channel-timeout \(default\)/)
  t.match(r.stdout, 'asyncore-use-poll = true (env WAITRESS_ASYNCORE_USE_POLL): not applicable on Node (libuv uses epoll)')
  for (const k of KNOBS.filter((k) => k.group !== 'not-applicable')) t.match(r.stdout, new RegExp(`^  ${k.name} `, 'm'), k.name)
})

t.test('bad input: exit 2 and one line naming the flag or variable, the value and what is accepted', async (t) => {
  const flag = cli(['config', '--channel-timeout', 'abc'])
  t.equal(flag.code, 2)
  t.equal(flag.stdout, '')
  t.equal(flag.stderr, 'prodserver: --channel-timeout="abc" is not valid for channel-timeout; accepted: a duration such as 500ms, 30s or 2m (a bare number means seconds) of at least 1ms\n')

  const env = cli(['config', '--json'], { PRODSERVER_WORKERS: '0' })
  t.equal(env.code, 2)
  t.equal(env.stdout, '')
  t.equal(env.stderr, 'prodserver: PRODSERVER_WORKERS="0" is not valid for workers; accepted: a whole number from 1 to 1024\n')

  const memory = cli(['config'], { ...SEED_EXAMPLE_1, SESSION_STORE: 'memory', WORKERS: '3' })
  t.equal(memory.code, 2)
  t.match(memory.stderr, /^prodserver: SESSION_STORE=memory is refused with 3 workers[^\n]*\n$/)

  const unknown = cli(['config', '--workerz', '3'])
  t.equal(unknown.code, 2)
  t.equal(unknown.stderr, 'prodserver: unknown flag --workerz; did you mean --workers?; accepted: the flags listed by prodserver --help\n')
})

t.test('an unknown PRODSERVER_ variable is a warning on stderr, not an error', async (t) => {
  const r = cli(['config', '--json'], { ...SEED_EXAMPLE_1, PRODSERVER_CHANEL_TIMEOUT: '30' })
  t.equal(r.code, 0)
  t.equal(r.stderr, 'prodserver: warning: unknown variable PRODSERVER_CHANEL_TIMEOUT is ignored; did you mean PRODSERVER_CHANNEL_TIMEOUT?\n')
  t.ok(JSON.parse(r.stdout), 'stdout is still only JSON')
})

t.test('fastify-cli habits: -p/-a/-l and FASTIFY_* variables drive the same knobs; the ones we do not read are warned about', async (t) => {
  const flags = cli(['config', '--json', '-p', '3000', '-a', '127.0.0.1', '-l', 'debug'], SEED_EXAMPLE_1)
  t.equal(flags.code, 0, flags.stderr)
  const plan = JSON.parse(flags.stdout)
  t.same(plan.listen.addresses, [{ host: '127.0.0.1', port: 3000 }])
  t.same(plan.logs, { level: 'debug' })
  t.same([plan.sources.port, plan.sources.host, plan.sources['log-level']], ['--port', '--host', '--log-level'])

  const env = cli(['config', '--json'], { ...SEED_EXAMPLE_1, FASTIFY_PORT: '3001', FASTIFY_ADDRESS: '::1', FASTIFY_LOG_LEVEL: 'warn', FASTIFY_PREFIX: '/api' })
  t.equal(env.code, 0)
  const fromEnv = JSON.parse(env.stdout)
  t.same(fromEnv.listen.addresses, [{ host: '::1', port: 3001 }])
  t.equal(fromEnv.logs.level, 'warn')
  t.equal(fromEnv.sources.port, 'env FASTIFY_PORT')
  t.equal(env.stderr, 'prodserver: warning: FASTIFY_PREFIX is a fastify-cli variable that prodserver does not read; register the app with a prefix inside your own plugin (fastify.register(routes, { prefix }))\n')

  const bad = cli(['config', '-p', 'x'])
  t.same([bad.code, bad.stderr], [2, 'prodserver: --port="x" is not valid for port; accepted: a whole number from 0 to 65535\n'])
  const badEnv = cli(['config'], { FASTIFY_LOG_LEVEL: 'loud' })
  t.same([badEnv.code, badEnv.stderr], [2, 'prodserver: FASTIFY_LOG_LEVEL="loud" is not valid for log-level; accepted: fatal, error, warn, info, debug, trace, silent\n'])
})

t.test('commands: missing, unknown, serve without a module', async (t) => {
  const none = cli([])
  t.same([none.code, none.stderr], [2, 'prodserver: missing command; accepted: serve, config, status, reload, stop, help (prodserver --help)\n'])
  const unknown = cli(['start'])
  t.same([unknown.code, unknown.stderr], [2, 'prodserver: unknown command "start"; accepted: serve, config, status, reload, stop, help (prodserver --help)\n'])
  const serve = cli(['serve'])
  t.same([serve.code, serve.stderr], [2, 'prodserver: serve needs a module; accepted: prodserver serve <module> [flags]\n'])
})

t.test('--help lists every knob with its env names; --version prints the package version', async (t) => {
  const help = cli(['--help'])
  t.equal(help.code, 0)
  for (const k of KNOBS) {
    t.match(help.stdout, `--${k.name}`, k.name)
    t.match(help.stdout, `env: ${k.env.join(', ')};`, `${k.name} env`)
  }
  t.match(help.stdout, '--cluster, --no-cluster')
  t.match(help.stdout, '-p, --port <n>')
  t.match(help.stdout, '-l, --log-level <fatal|error|warn|info|debug|trace|silent>')
  t.match(help.stdout, 'prodserver config [--json] [flags]')
  const version = cli(['--version'])
  t.same([version.code, version.stdout], [0, `${pkg.version}\n`])
})
