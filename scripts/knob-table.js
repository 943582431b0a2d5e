#!/usr/bin/env node
'use strict'
/**
 * Prints the README's knob tables (Markdown) from the one knob table in the code, grouped as
 * `prodserver --help` groups them. Run after a build: `node scripts/knob-table.js`.
 */
const path = require('node:path')

let knobs, help
try {
  knobs = require(path.join(__dirname, '..', 'dist', 'lib', 'config', 'knobs.js'))
  help = require(path.join(__dirname, '..', 'dist', 'lib', 'cli', 'help.js'))
} catch (err) {
  process.stderr.write(`knob-table: build first (npx tsc -p tsconfig.json): ${err.message}\n`)
  process.exit(1)
}

/** Markdown table cells must not contain a bare pipe. */
const cell = (text) => String(text).replace(/\|/g, '\\|')

const out = []
const groups = [...new Set(knobs.KNOBS.map((k) => k.group))]
for (const group of groups) {
  out.push(`### ${help.GROUP_TITLES[group]}`, '')
  out.push('| knob | env (first is preferred) | default | meaning |', '|---|---|---|---|')
  for (const knob of knobs.KNOBS.filter((k) => k.group === group)) {
    const env = knob.env.map((e) => `\`${e}\``).join(', ')
    out.push(`| \`--${knob.name}\` | ${env} | ${cell(help.defaultText(knob))} | ${cell(knob.help)} |`)
  }
  out.push('')
}
process.stdout.write(out.join('\n'))
