/**
 * `prodserver --help`, generated from the knob table so it can never miss a knob.
 */
import { KNOBS, type KnobDefinition, type KnobGroup } from '../config/knobs'
import { formatKnobValue } from '../config/values'

export const GROUP_TITLES: Record<KnobGroup, string> = {
  app: 'The app: loaders, logs, watch',
  process: 'Process model and worker sizing',
  listen: 'Where to listen',
  server: 'Server tuning (per process)',
  session: 'Sessions',
  'not-applicable': 'Accepted for Waitress compatibility, not applicable on Node'
}

const KIND_PLACEHOLDER: Record<string, string> = {
  integer: '<n>',
  number: '<n>',
  duration: '<duration>',
  size: '<size>',
  string: '<text>',
  addresses: '<host:port,…>',
  octal: '<perms>',
  secrets: '<secret,…>',
  list: '<a,b,…>'
}

export function flagSyntax (knob: KnobDefinition): string {
  const short = knob.short !== undefined ? `-${knob.short}, ` : ''
  if (knob.kind === 'boolean') return `${short}--${knob.name}, --no-${knob.name}`
  if (knob.kind === 'enum') return `${short}--${knob.name} <${(knob.values ?? []).join('|')}>`
  return `${short}--${knob.name} ${KIND_PLACEHOLDER[knob.kind] ?? '<value>'}`
}

export function defaultText (knob: KnobDefinition): string {
  if (knob.defaultText !== undefined) return knob.defaultText
  if (knob.default === undefined) return '—'
  if (knob.kind === 'boolean') return knob.default === true ? 'on' : 'off'
  return formatKnobValue(knob, knob.default)
}

export function renderHelp (version: string): string {
  const lines = [
    `prodserver ${version}: production serving for Fastify apps`,
    '',
    'Usage:',
    '  prodserver serve <module> [flags]    start <module> (a Fastify plugin: default export or module.exports)',
    '  prodserver config [--json] [flags]   print the plan for this machine and why; starts nothing',
    '  prodserver status [--json]           ask the running server: plan, workers, memory, restarts, advice',
    '  prodserver reload                    replace every worker, one at a time (returns when done)',
    '  prodserver stop                      graceful stop (returns when the server has exited)',
    '      these three find the server of this user through its control socket; with several,',
    '      choose with --port, --unix-socket or --control-dir (or run from its directory).',
    '      Exit 3 when no server is running.',
    '  prodserver --help | --version',
    '',
    'Every flag can also be set in the environment. Precedence: flag > option in code >',
    'PRODSERVER_<NAME> > the other names listed > default. Durations: 500ms, 30s, 2m (a bare number',
    'is seconds unless noted); sizes: bytes or kb/mb/gb; booleans: 1/0/true/false/yes/no/on/off.',
    'Bad input exits with code 2.'
  ]
  const groups = [...new Set(KNOBS.map((k) => k.group))] as KnobGroup[]
  for (const group of groups) {
    lines.push('', `${GROUP_TITLES[group]}:`)
    for (const knob of KNOBS.filter((k) => k.group === group) as readonly KnobDefinition[]) {
      lines.push(`  ${flagSyntax(knob)}`)
      lines.push(`      ${knob.help}`)
      lines.push(`      env: ${knob.env.join(', ')}; default: ${defaultText(knob)}`)
    }
  }
  return lines.join('\n') + '\n'
}
