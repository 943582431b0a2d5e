/**
 * CLI argv → { command, positional, flags }. Flags are `--<knob>` (`--port 80`, `--port=80`);
 * boolean knobs also take `--<knob>` alone and `--no-<knob>`. The knobs fastify-cli users type
 * most also have its one-letter form (`-p 80`, `-p=80`, `-p80`, `-w`). A list knob given twice
 * (`--import a --import b`) keeps both. Unknown flags are errors.
 */
import { KNOBS, knobByName, knobByShort, type KnobDefinition } from './knobs'
import { KnobError, acceptedText } from './values'
import { closest } from './suggest'
import { fastifyCliFlagAdvice } from './fastify-cli-env'

export interface ParsedArgv {
  command?: string
  positional: string[]
  flags: Record<string, string | boolean>
  /** Non-knob switches: --json, --help, --version. */
  switches: Set<string>
}

const SWITCHES = new Set(['json', 'help', 'version'])

export function parseArgv (argv: readonly string[]): ParsedArgv {
  const result: ParsedArgv = { positional: [], flags: {}, switches: new Set() }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') { result.positional.push(...argv.slice(i + 1)); break }
    if (arg === '-h') { result.switches.add('help'); continue }
    if (arg === '-v' || arg === '-V') { result.switches.add('version'); continue }
    if (/^-[a-zA-Z]/.test(arg)) {
      i = shortFlag(argv, i, result)
      continue
    }
    if (!arg.startsWith('--')) {
      if (result.command === undefined && result.positional.length === 0 && !arg.includes('/') && !arg.includes('.')) result.command = arg
      else result.positional.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    let inline: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1)
    if (SWITCHES.has(name) && inline === undefined) { result.switches.add(name); continue }
    let negated = false
    if (name.startsWith('no-') && knobByName(name) === undefined) { negated = true; name = name.slice(3) }
    const knob = knobByName(name)
    if (knob === undefined) {
      const advice = fastifyCliFlagAdvice(name)
      const guess = advice === undefined ? closest(name, [...KNOBS.map((k) => k.name), ...SWITCHES]) : undefined
      throw new KnobError(`unknown flag --${name}${advice !== undefined ? `; ${advice}` : guess !== undefined ? `; did you mean --${guess}?` : ''}; accepted: the flags listed by prodserver --help`)
    }
    if (knob.kind === 'boolean') {
      if (negated) {
        if (inline !== undefined) throw new KnobError(`--no-${name} takes no value; accepted: --${name}, --${name}=<bool>, --no-${name}`)
        result.flags[name] = false
      } else if (inline !== undefined) {
        result.flags[name] = inline
      } else if (argv[i + 1] !== undefined && /^(1|0|true|false|yes|no|on|off)$/i.test(argv[i + 1])) {
        result.flags[name] = argv[++i]
      } else {
        result.flags[name] = true
      }
      continue
    }
    if (negated) throw new KnobError(`--no-${name} is only for boolean knobs; accepted: --${name} <value>`)
    if (inline === undefined) {
      inline = argv[i + 1]
      if (inline === undefined || inline.startsWith('--')) throw new KnobError(`--${name} needs a value; accepted: ${acceptedText(knob)}`)
      i++
    }
    setFlag(result, knob, inline)
  }
  return result
}

/** `-p 80`, `-p=80`, `-p80`; a boolean letter alone (`-w`). Returns the index of the last argv entry used. */
function shortFlag (argv: readonly string[], i: number, result: ParsedArgv): number {
  const arg = argv[i]
  const letter = arg[1]
  const knob = knobByShort(letter)
  if (knob === undefined) {
    const known = (KNOBS as readonly KnobDefinition[]).filter((k) => k.short !== undefined).map((k) => `-${k.short as string}`)
    const advice = fastifyCliFlagAdvice(letter)
    throw new KnobError(`unknown flag -${letter}${advice !== undefined ? `; ${advice}` : ''}; accepted: ${[...known, '-h', '-v'].join(', ')} and the --flags listed by prodserver --help`)
  }
  const rest = arg.slice(2)
  if (knob.kind === 'boolean') {
    if (rest === '') result.flags[knob.name] = true
    else if (rest.startsWith('=')) result.flags[knob.name] = rest.slice(1)
    else throw new KnobError(`-${letter} (--${knob.name}) takes no value, got ${JSON.stringify(arg)}; accepted: -${letter}, --${knob.name}=<bool>, --no-${knob.name}`)
    return i
  }
  if (rest !== '') {
    setFlag(result, knob, rest.startsWith('=') ? rest.slice(1) : rest)
    return i
  }
  const value = argv[i + 1]
  if (value === undefined || value.startsWith('-')) throw new KnobError(`-${letter} (--${knob.name}) needs a value; accepted: ${acceptedText(knob)}`)
  setFlag(result, knob, value)
  return i + 1
}

function setFlag (result: ParsedArgv, knob: KnobDefinition, value: string): void {
  const earlier = result.flags[knob.name]
  result.flags[knob.name] = knob.kind === 'list' && typeof earlier === 'string' ? `${earlier},${value}` : value
}
