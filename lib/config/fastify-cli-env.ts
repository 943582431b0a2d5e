/**
 * fastify-cli reads its options from FASTIFY_* variables and the same-named flags. The ones that mean the same thing here
 * are aliases in the knob table (FASTIFY_PORT, FASTIFY_ADDRESS, FASTIFY_LOG_LEVEL, …); the rest
 * are listed below so a project moving from `fastify start` is told which of its variables
 * prodserver does not read, and what to use instead — never ignored silently. Its flags get the
 * same advice when they are refused (`--address` is `--host` here, `-x`/`--prefix` is not read).
 */
import { KNOBS, type KnobDefinition } from './knobs'

/** fastify-cli's variables with no prodserver equivalent → what to do instead. */
const NOT_READ: Readonly<Record<string, string>> = {
  FASTIFY_PREFIX: 'register the app with a prefix inside your own plugin (fastify.register(routes, { prefix }))',
  FASTIFY_OPTIONS: 'export `options` from the app module (Fastify server options), as fastify-cli does with --options',
  FASTIFY_LOGGING_MODULE: 'configure the logger in the app module\'s `options` export (logger or loggerInstance)',
  FASTIFY_PLUGIN_TIMEOUT: 'set pluginTimeout in the app module\'s `options` export',
  FASTIFY_CLOSE_GRACE_DELAY: 'use PRODSERVER_GRACEFUL_TIMEOUT (the drain budget; a bare number means seconds)',
  FASTIFY_TRUST_PROXY: 'use PRODSERVER_TRUSTED_PROXY (the peers whose X-Forwarded-* headers are trusted)',
  FASTIFY_DEBUG: 'start node with --inspect (e.g. NODE_OPTIONS=--inspect)',
  FASTIFY_DEBUG_PORT: 'start node with --inspect=<host:port> (e.g. in NODE_OPTIONS)',
  FASTIFY_DEBUG_HOST: 'start node with --inspect=<host:port> (e.g. in NODE_OPTIONS)',
  FASTIFY_IGNORE_WATCH: 'prodserver --watch ignores node_modules and .git',
  FASTIFY_VERBOSE_WATCH: 'prodserver --watch logs every restart with the file that changed'
}

export function fastifyCliEnvWarnings (env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = []
  for (const [name, instead] of Object.entries(NOT_READ)) {
    if (env[name] === undefined || env[name] === '') continue
    warnings.push(`${name} is a fastify-cli variable that prodserver does not read; ${instead}`)
  }
  return warnings
}

/** fastify-cli's one-letter flags that prodserver does not share (-p, -a, -s, -l, -P, -w, -r are the same). */
const CLI_SHORT: Readonly<Record<string, string>> = { o: 'options', x: 'prefix', T: 'plugin-timeout', d: 'debug', I: 'debug-port', L: 'logging-module' }

/**
 * For a flag prodserver does not know: what fastify-cli's flag of that name is here, or
 * undefined when fastify-cli has no such flag. `flag` is the long name, or one letter.
 */
export function fastifyCliFlagAdvice (flag: string): string | undefined {
  const long = flag.length === 1 ? CLI_SHORT[flag] : flag
  if (long === undefined) return undefined
  const env = `FASTIFY_${long.toUpperCase().replace(/-/g, '_')}`
  const same = (KNOBS as readonly KnobDefinition[]).find((k) => k.env.includes(env))
  const name = flag.length === 1 ? `-${flag} (--${long})` : `--${long}`
  if (same !== undefined) return `fastify-cli's ${name} is --${same.name}${same.short !== undefined ? ` (-${same.short})` : ''} here`
  const instead = NOT_READ[env]
  if (instead === undefined) return undefined
  // The advice names variables (for FASTIFY_*); a flag user is told the flag.
  return `fastify-cli's ${name} is not read here: ${instead.replace(/PRODSERVER_([A-Z_]+)/g, (_m, n: string) => `--${n.toLowerCase().replace(/_/g, '-')}`)}`
}
