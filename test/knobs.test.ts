/**
 * The knob table's parsing, precedence and warnings: what a user typing env vars, flags or
 * options sees, including the exact one-line error for each kind of bad value.
 */
import t from 'tap'
import { KNOBS, knobByName, type KnobDefinition } from '../lib/config/knobs'
import { parseKnobValue, KnobError } from '../lib/config/values'
import { resolveKnobs } from '../lib/config/resolve'
import { parseArgv } from '../lib/config/argv'

const knob = (name: string): KnobDefinition => knobByName(name)!
const parse = (name: string, raw: unknown, where = `--${name}`): unknown => parseKnobValue(knob(name), raw, where)
/** tap's throws() matches messages as substrings; a user reads the whole line, so compare it whole. */
function throwsExactly (t: Tap, fn: () => unknown, message: string): void {
  try {
    fn()
    t.fail(`expected a KnobError: ${message}`)
  } catch (err) {
    t.ok(err instanceof KnobError, 'a KnobError (exit code 2)')
    t.equal((err as Error).message, message)
  }
}
type Tap = tap.Test
const rejects = (t: Tap, name: string, raw: unknown, where: string, message: string): void => {
  throwsExactly(t, () => parse(name, raw, where), message)
}

t.test('booleans', async (t) => {
  for (const word of ['1', 'true', 'YES', 'on']) t.equal(parse('cluster', word), true, word)
  for (const word of ['0', 'false', 'no', 'Off']) t.equal(parse('cluster', word), false, word)
  rejects(t, 'cluster', 'maybe', 'PRODSERVER_CLUSTER', 'PRODSERVER_CLUSTER="maybe" is not valid for cluster; accepted: 1/0/true/false/yes/no/on/off')
})

t.test('integers and numbers', async (t) => {
  t.equal(parse('port', '8081'), 8081)
  rejects(t, 'port', 'abc', 'PORT', 'PORT="abc" is not valid for port; accepted: a whole number from 0 to 65535')
  rejects(t, 'port', '80.5', 'PORT', 'PORT="80.5" is not valid for port; accepted: a whole number from 0 to 65535')
  rejects(t, 'workers', '0', 'PRODSERVER_WORKERS', 'PRODSERVER_WORKERS="0" is not valid for workers; accepted: a whole number from 1 to 1024')
  t.equal(parse('cpus', '1.5'), 1.5)
  rejects(t, 'cpus', '0', 'PRODSERVER_CPUS', 'PRODSERVER_CPUS="0" is not valid for cpus; accepted: a number from 0.01 to 4096')
})

t.test('durations: 500ms, 30s, 2m, and bare numbers in the knob\'s unit', async (t) => {
  t.equal(parse('channel-timeout', '500ms'), 500)
  t.equal(parse('channel-timeout', '30s'), 30_000)
  t.equal(parse('channel-timeout', '2m'), 120_000)
  t.equal(parse('channel-timeout', '45'), 45_000, 'bare = seconds (Waitress)')
  t.equal(parse('session-ttl', '3600'), 3_600_000, 'bare = seconds (SESSION_TTL)')
  t.equal(parse('session-redis-timeout', '250'), 250, 'bare = milliseconds (an operation timeout)')
  rejects(t, 'channel-timeout', 'abc', '--channel-timeout',
    '--channel-timeout="abc" is not valid for channel-timeout; accepted: a duration such as 500ms, 30s or 2m (a bare number means seconds) of at least 1ms')
  rejects(t, 'session-redis-timeout', '5', 'SESSION_REDIS_TIMEOUT',
    'SESSION_REDIS_TIMEOUT="5" is not valid for session-redis-timeout; accepted: a duration such as 500ms, 30s or 2m (a bare number means milliseconds) of at least 10ms')
})

t.test('sizes: bytes, kb, mb', async (t) => {
  t.equal(parse('recv-bytes', '8192'), 8192)
  t.equal(parse('recv-bytes', '64kb'), 65_536)
  t.equal(parse('max-request-body-size', '1mb'), 1_048_576)
  rejects(t, 'recv-bytes', '10xb', 'WAITRESS_RECV_BYTES',
    'WAITRESS_RECV_BYTES="10xb" is not valid for recv-bytes; accepted: a size in bytes, or with a kb/mb/gb suffix of at least 1024')
})

t.test('enums, addresses, octal, lists, strings and secrets', async (t) => {
  t.equal(parse('url-scheme', 'HTTPS'), 'https')
  rejects(t, 'url-scheme', 'ftp', 'PRODSERVER_URL_SCHEME', 'PRODSERVER_URL_SCHEME="ftp" is not valid for url-scheme; accepted: http, https')
  t.same(parse('listen', '127.0.0.1:80,[::1]:81 *:82'), [{ host: '127.0.0.1', port: 80 }, { host: '::1', port: 81 }, { host: '0.0.0.0', port: 82 }])
  rejects(t, 'listen', 'nohost', 'PRODSERVER_LISTEN',
    'PRODSERVER_LISTEN="nohost" is not valid for listen; accepted: a space- or comma-separated list of host:port ([::1]:8080 for IPv6, *:8080 for all interfaces)')
  t.equal(parse('unix-socket-perms', '660'), 0o660)
  rejects(t, 'unix-socket-perms', '999', 'PRODSERVER_UNIX_SOCKET_PERMS', 'PRODSERVER_UNIX_SOCKET_PERMS="999" is not valid for unix-socket-perms; accepted: octal permissions such as 600 or 660')
  t.same(parse('trusted-proxy', '10.0.0.0/8, localhost'), ['10.0.0.0/8', 'localhost'])
  rejects(t, 'trusted-proxy', ',', 'PRODSERVER_TRUSTED_PROXY', 'PRODSERVER_TRUSTED_PROXY="," is not valid for trusted-proxy; accepted: a comma-separated list')
  rejects(t, 'ident', '', 'option ident', 'option ident="" is not valid for ident; accepted: a non-empty string')
  const long = 'x'.repeat(32)
  t.same(parse('session-secret', `${long},${long}y`), [long, `${long}y`])
  rejects(t, 'session-secret', `${long},short`, 'SESSION_SECRET',
    'SESSION_SECRET entry 2 of 2 has 5 characters; accepted: a comma-separated list of secrets, each at least 32 characters')
  t.throws(() => parse('session-secret', 'hunter2', 'SESSION_SECRET'), { message: /^((?!hunter2).)*$/ }, 'a secret is never echoed')
})

t.test('precedence: flag > option > PRODSERVER_ > alias > default', async (t) => {
  const env = { PRODSERVER_PORT: '1001', PORT: '1002' }
  const all = resolveKnobs({ flags: { port: '1004' }, options: { port: 1003 }, env })
  t.same([all.values.port, all.sources.port], [1004, '--port'])
  const option = resolveKnobs({ options: { port: 1003 }, env })
  t.same([option.values.port, option.sources.port], [1003, 'option port'])
  const preferred = resolveKnobs({ env })
  t.same([preferred.values.port, preferred.sources.port], [1001, 'env PRODSERVER_PORT'])
  const alias = resolveKnobs({ env: { PORT: '1002' } })
  t.same([alias.values.port, alias.sources.port], [1002, 'env PORT'])
  const none = resolveKnobs({ env: {} })
  t.same([none.values.port, none.sources.port], [8080, 'default'])
  t.same([none.values['channel-timeout'], none.values['worker-memory-mb']], [120_000, 200])
})

t.test('a bare channel timeout is read in seconds, as Waitress does', async (t) => {
  const r = resolveKnobs({ env: { WAITRESS_CHANNEL_TIMEOUT: '60' } })
  t.equal(r.values['channel-timeout'], 60_000)
  t.equal(r.sources['channel-timeout'], 'env WAITRESS_CHANNEL_TIMEOUT')
})

t.test('two names of one knob set to different values is a warning; equal values are not', async (t) => {
  const r = resolveKnobs({ env: { PRODSERVER_PORT: '1001', PORT: '1002' } })
  t.same(r.warnings, ['PRODSERVER_PORT and PORT are both set to different values for port; using PRODSERVER_PORT'])
  t.same(resolveKnobs({ env: { CHANNEL_TIMEOUT: '60', WAITRESS_CHANNEL_TIMEOUT: '1m' } }).warnings, [])
})

t.test('an unknown PRODSERVER_ variable is a warning with a suggestion, never an error', async (t) => {
  const r = resolveKnobs({ env: { PRODSERVER_CHANEL_TIMEOUT: '30', PRODSERVER_XYZZY: '1', PRODSERVER_WORKER_ID: '3' } })
  t.same(r.warnings, [
    'unknown variable PRODSERVER_CHANEL_TIMEOUT is ignored; did you mean PRODSERVER_CHANNEL_TIMEOUT?',
    'unknown variable PRODSERVER_XYZZY is ignored'
  ])
})

t.test('argv: --flag value, --flag=value, --no-flag, switches, commands', async (t) => {
  const a = parseArgv(['serve', 'app.js', '--port', '81', '--channel-timeout=30s', '--no-cluster', '--expose-tracebacks', '--json'])
  t.equal(a.command, 'serve')
  t.same(a.positional, ['app.js'])
  t.same(a.flags, { port: '81', 'channel-timeout': '30s', cluster: false, 'expose-tracebacks': true })
  t.ok(a.switches.has('json'))
  t.same(parseArgv(['config', '--cluster', 'off']).flags, { cluster: 'off' })
  throwsExactly(t, () => parseArgv(['config', '--no-port']), '--no-port is only for boolean knobs; accepted: --port <value>')
  throwsExactly(t, () => parseArgv(['config', '--port']), '--port needs a value; accepted: a whole number from 0 to 65535')
  throwsExactly(t, () => parseArgv(['config', '--prot', '80']), 'unknown flag --prot; did you mean --port?; accepted: the flags listed by prodserver --help')
  const resolved = resolveKnobs({ flags: parseArgv(['config', '--no-cluster']).flags, env: { PRODSERVER_CLUSTER: '1' } })
  t.same([resolved.values.cluster, resolved.sources.cluster], [false, '--cluster'])
})

t.test('argv: fastify-cli\'s one-letter flags', async (t) => {
  const a = parseArgv(['serve', 'app.js', '-p', '3000', '-a', '127.0.0.1', '-l', 'debug', '-P'])
  t.same(a.flags, { port: '3000', host: '127.0.0.1', 'log-level': 'debug', 'pretty-logs': true })
  t.same(parseArgv(['config', '-p=81', '-s/tmp/app.sock']).flags, { port: '81', 'unix-socket': '/tmp/app.sock' })
  t.same(parseArgv(['config', '-P=off']).flags, { 'pretty-logs': 'off' })
  t.same(parseArgv(['serve', 'app.ts', '-w', '-i', 'tsx', '--import=./hooks.mjs', '-r', 'dotenv/config']).flags, { watch: true, import: 'tsx,./hooks.mjs', require: 'dotenv/config' }, 'a repeated list flag keeps every value')
  t.same(resolveKnobs({ flags: parseArgv(['serve', 'app.ts', '-i', 'tsx', '-i', './hooks.mjs']).flags }).values.import, ['tsx', './hooks.mjs'])
  throwsExactly(t, () => parseArgv(['config', '-p']), '-p (--port) needs a value; accepted: a whole number from 0 to 65535')
  throwsExactly(t, () => parseArgv(['config', '-p', '-l', 'info']), '-p (--port) needs a value; accepted: a whole number from 0 to 65535')
  throwsExactly(t, () => parseArgv(['config', '-Pyes']), '-P (--pretty-logs) takes no value, got "-Pyes"; accepted: -P, --pretty-logs=<bool>, --no-pretty-logs')
  throwsExactly(t, () => parseArgv(['config', '-x', '/api']), 'unknown flag -x; fastify-cli\'s -x (--prefix) is not read here: register the app with a prefix inside your own plugin (fastify.register(routes, { prefix })); accepted: -i, -r, -w, -l, -P, -a, -p, -s, -h, -v and the --flags listed by prodserver --help')
  // fastify-cli's flags that are named differently here, or not read: refused with what to use.
  throwsExactly(t, () => parseArgv(['serve', 'app.js', '--address', '0.0.0.0']), 'unknown flag --address; fastify-cli\'s --address is --host (-a) here; accepted: the flags listed by prodserver --help')
  throwsExactly(t, () => parseArgv(['serve', 'app.js', '--body-limit=1048576']), 'unknown flag --body-limit; fastify-cli\'s --body-limit is --max-request-body-size here; accepted: the flags listed by prodserver --help')
  throwsExactly(t, () => parseArgv(['serve', 'app.js', '--close-grace-delay', '500']), 'unknown flag --close-grace-delay; fastify-cli\'s --close-grace-delay is not read here: use --graceful-timeout (the drain budget; a bare number means seconds); accepted: the flags listed by prodserver --help')
  throwsExactly(t, () => parseArgv(['serve', 'app.js', '-o']), 'unknown flag -o; fastify-cli\'s -o (--options) is not read here: export `options` from the app module (Fastify server options), as fastify-cli does with --options; accepted: -i, -r, -w, -l, -P, -a, -p, -s, -h, -v and the --flags listed by prodserver --help')
  const r = resolveKnobs({ flags: parseArgv(['config', '-l', 'warn']).flags, env: { FASTIFY_LOG_LEVEL: 'debug' } })
  t.same([r.values['log-level'], r.sources['log-level']], ['warn', '--log-level'], 'the flag beats the variable')
  throwsExactly(t, () => resolveKnobs({ flags: parseArgv(['config', '-l', 'loud']).flags }), '--log-level="loud" is not valid for log-level; accepted: fatal, error, warn, info, debug, trace, silent')
})

t.test('fastify-cli\'s FASTIFY_* variables: aliases of the same knobs, or a warning — never ignored silently', async (t) => {
  const r = resolveKnobs({ env: { FASTIFY_PORT: '3000', FASTIFY_ADDRESS: '127.0.0.1', FASTIFY_LOG_LEVEL: 'debug', FASTIFY_PRETTY_LOGS: 'true', FASTIFY_BODY_LIMIT: '2048' } })
  t.same([r.values.port, r.sources.port], [3000, 'env FASTIFY_PORT'])
  t.same([r.values.host, r.sources.host], ['127.0.0.1', 'env FASTIFY_ADDRESS'])
  t.same([r.values['log-level'], r.sources['log-level']], ['debug', 'env FASTIFY_LOG_LEVEL'])
  t.same([r.values['pretty-logs'], r.values['max-request-body-size']], [true, 2048])
  const dev = resolveKnobs({ env: { FASTIFY_WATCH: '1', FASTIFY_IMPORT: 'tsx', FASTIFY_REQUIRE: 'dotenv/config' } })
  t.same([dev.values.watch, dev.values.import, dev.values.require], [true, ['tsx'], ['dotenv/config']], 'FASTIFY_WATCH, FASTIFY_IMPORT, FASTIFY_REQUIRE')
  t.same(dev.warnings, [])
  t.same(r.warnings, [])
  const socket = resolveKnobs({ env: { FASTIFY_SOCKET: '/tmp/app.sock' } })
  t.same([socket.values['unix-socket'], socket.sources['unix-socket']], ['/tmp/app.sock', 'env FASTIFY_SOCKET'])
  const both = resolveKnobs({ env: { PORT: '5000', FASTIFY_PORT: '3000' } })
  t.same([both.values.port, both.warnings], [3000, ['FASTIFY_PORT and PORT are both set to different values for port; using FASTIFY_PORT']], 'FASTIFY_PORT before PORT, as fastify-cli reads them')
  t.equal(resolveKnobs({ env: { PRODSERVER_PORT: '1', FASTIFY_PORT: '3000' } }).values.port, 1, 'PRODSERVER_PORT first')
  t.same(resolveKnobs({ env: { FASTIFY_PREFIX: '/api', FASTIFY_CLOSE_GRACE_DELAY: '1000' } }).warnings, [
    'FASTIFY_PREFIX is a fastify-cli variable that prodserver does not read; register the app with a prefix inside your own plugin (fastify.register(routes, { prefix }))',
    'FASTIFY_CLOSE_GRACE_DELAY is a fastify-cli variable that prodserver does not read; use PRODSERVER_GRACEFUL_TIMEOUT (the drain budget; a bare number means seconds)'
  ])
})

t.test('knobs that exclude each other', async (t) => {
  throwsExactly(t, () => resolveKnobs({ env: { PRODSERVER_LISTEN: '127.0.0.1:80', HOST: '0.0.0.0' } }), 'PRODSERVER_LISTEN cannot be combined with HOST; accepted: either listen, or host/port')
  throwsExactly(t, () => resolveKnobs({ flags: { 'unix-socket': '/tmp/s', port: '80' } }), '--unix-socket cannot be combined with listen/host/port; accepted: one way to listen')
  throwsExactly(t, () => resolveKnobs({ env: { PRODSERVER_HEADERS_TIMEOUT: '400' } }), 'PRODSERVER_HEADERS_TIMEOUT=400s is above request-timeout (300s); accepted: headers-timeout ≤ request-timeout')
  throwsExactly(t, () => resolveKnobs({ env: { NODE_ENV: 'production', WAITRESS_EXPOSE_TRACEBACKS: '1' } }), 'WAITRESS_EXPOSE_TRACEBACKS=true is refused when NODE_ENV=production; accepted: false')
  t.equal(resolveKnobs({ env: { NODE_ENV: 'development', WAITRESS_EXPOSE_TRACEBACKS: '1' } }).values['expose-tracebacks'], true)
})

t.test('the table itself: unique names and env names, every knob documented', async (t) => {
  const names = KNOBS.map((k) => k.name)
  t.equal(new Set(names).size, names.length)
  const envs = KNOBS.flatMap((k) => [...k.env])
  t.equal(new Set(envs).size, envs.length, 'no env name belongs to two knobs')
  for (const k of KNOBS) {
    t.ok(k.env[0].startsWith('PRODSERVER_'), `${k.name}: preferred env is PRODSERVER_*`)
    if ((k as KnobDefinition).short !== undefined) t.equal(KNOBS.filter((o) => (o as KnobDefinition).short === (k as KnobDefinition).short).length, 1, `-${(k as KnobDefinition).short as string} is one knob's`)
    t.ok(k.help.length > 10, `${k.name}: has help`)
  }
})
