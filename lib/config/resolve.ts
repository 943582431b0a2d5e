/**
 * Precedence: CLI flag > option in code > PRODSERVER_<NAME> > alias env names > default.
 * Pure: the environment is passed in, never read here.
 */
import { KNOBS, camelCase, type KnobDefinition, type KnobName, type KnobValues } from './knobs'
import { KnobError, parseKnobValue } from './values'
import { closest } from './suggest'
import { fastifyCliEnvWarnings } from './fastify-cli-env'

export type KnobSource = 'flag' | 'option' | 'env' | 'default'

export interface ResolvedKnobs {
  values: KnobValues
  /** knob name → where its value came from: `--port`, `option port`, `env PORT`, `default`. */
  sources: Record<KnobName, string>
  warnings: string[]
  /**
   * The non-knob environment the plan depends on, captured here so planServer() stays pure when
   * it is handed a resolution: NODE_ENV (session store, expose-tracebacks) and UV_THREADPOOL_SIZE.
   */
  context?: PlanContext
}

export interface PlanContext {
  nodeEnv?: string
  uvThreadpoolSize?: string
}

export interface ResolveInput {
  /** Parsed CLI flags: knob name → raw string (or boolean for --flag / --no-flag). */
  flags?: Partial<Record<string, string | boolean>>
  /** Options in code, camelCase knob names. */
  options?: Record<string, unknown>
  env?: NodeJS.ProcessEnv
  /** Which knobs to resolve (all by default). */
  knobs?: readonly KnobDefinition[]
}

/** True when `x` already is a resolution (so planServer can take either). */
export function isResolved (x: unknown): x is ResolvedKnobs {
  return typeof x === 'object' && x !== null && 'values' in x && 'sources' in x && 'warnings' in x
}

export function resolveKnobs (input: ResolveInput = {}): ResolvedKnobs {
  const { flags = {}, options = {}, env = {} } = input
  const knobs: readonly KnobDefinition[] = input.knobs ?? KNOBS
  const values: Record<string, unknown> = {}
  const sources: Record<string, string> = {}
  const warnings: string[] = []

  for (const knob of knobs) {
    const optionName = camelCase(knob.name)
    const flag = flags[knob.name]
    const envHits = knob.env.filter((name) => env[name] !== undefined && env[name] !== '')
    if (envHits.length > 1) {
      const parsed = envHits.map((name) => JSON.stringify(parseKnobValue(knob, env[name], name)))
      if (new Set(parsed).size > 1) {
        warnings.push(`${envHits.join(' and ')} are both set to different values for ${knob.name}; using ${envHits[0]}`)
      }
    }
    if (flag !== undefined) {
      values[knob.name] = parseKnobValue(knob, flag, `--${knob.name}`)
      sources[knob.name] = `--${knob.name}`
    } else if (options[optionName] !== undefined) {
      values[knob.name] = parseKnobValue(knob, options[optionName], `option ${optionName}`, true)
      sources[knob.name] = `option ${optionName}`
    } else if (envHits.length > 0) {
      values[knob.name] = parseKnobValue(knob, env[envHits[0]], envHits[0])
      sources[knob.name] = `env ${envHits[0]}`
    } else {
      values[knob.name] = knob.default
      sources[knob.name] = 'default'
    }
  }

  const context: PlanContext = { nodeEnv: env.NODE_ENV, uvThreadpoolSize: env.UV_THREADPOOL_SIZE }
  checkCombinations(values, sources, context)
  warnings.push(...unknownPrefixedEnv(env))
  // The launcher's whole resolution (not the sessions plugin's subset) speaks for the process.
  if (input.knobs === undefined) warnings.push(...fastifyCliEnvWarnings(env))
  return { values: values as KnobValues, sources: sources as Record<KnobName, string>, warnings, context }
}

/** Rules that involve more than one knob. */
function checkCombinations (values: Record<string, unknown>, sources: Record<string, string>, context: PlanContext): void {
  const given = (name: string): boolean => sources[name] !== undefined && sources[name] !== 'default'
  if (values.listen !== undefined && (given('host') || given('port'))) {
    throw new KnobError(`${where(sources, 'listen')} cannot be combined with ${given('host') ? where(sources, 'host') : where(sources, 'port')}; accepted: either listen, or host/port`)
  }
  if (values['unix-socket'] !== undefined && (values.listen !== undefined || given('host') || given('port'))) {
    throw new KnobError(`${where(sources, 'unix-socket')} cannot be combined with listen/host/port; accepted: one way to listen`)
  }
  if (values['expose-tracebacks'] === true && context.nodeEnv === 'production') {
    throw new KnobError(`${where(sources, 'expose-tracebacks')}=true is refused when NODE_ENV=production; accepted: false`)
  }
  const headers = values['headers-timeout'] as number | undefined
  const request = values['request-timeout'] as number | undefined
  if (headers !== undefined && request !== undefined && headers > request) {
    throw new KnobError(`${where(sources, 'headers-timeout')}=${headers / 1000}s is above request-timeout (${request / 1000}s); accepted: headers-timeout ≤ request-timeout`)
  }
}

function where (sources: Record<string, string>, name: string): string {
  const s = sources[name]
  if (s === undefined || s === 'default') return name
  return s.replace(/^env /, '').replace(/^option /, 'option ')
}

/** A `PRODSERVER_*` variable no knob reads is almost always a typo: say so, with a suggestion. */
function unknownPrefixedEnv (env: NodeJS.ProcessEnv): string[] {
  const known = new Set(KNOBS.flatMap((k) => k.env as readonly string[]))
  const internal = /^PRODSERVER_(WORKER_|INTERNAL_)/ // set by the launcher for its own workers
  const warnings: string[] = []
  for (const name of Object.keys(env)) {
    if (!name.startsWith('PRODSERVER_') || known.has(name) || internal.test(name)) continue
    const guess = closest(name, [...known].filter((k) => k.startsWith('PRODSERVER_')))
    warnings.push(`unknown variable ${name} is ignored${guess ? `; did you mean ${guess}?` : ''}`)
  }
  return warnings
}
