'use strict'
/**
 * The command line of the README generators (knob-table.js, session-options-table.js): print a
 * generated block, or write / check it between its start and end markers in a file.
 *   node scripts/<generator>.js                 print the block
 *   node scripts/<generator>.js --write FILE    replace the block between the markers in FILE
 *   node scripts/<generator>.js --check FILE    exit 1 when FILE's block differs (test/readme.test.ts)
 */
const fs = require('node:fs')

function runGenerator ({ tool, what, start: START, end: END, content, argv = process.argv.slice(2) }) {
  const [mode, file] = argv
  if (mode === undefined) {
    process.stdout.write(content)
    return
  }
  if ((mode !== '--write' && mode !== '--check') || file === undefined) {
    process.stderr.write(`usage: ${tool}.js [--write FILE | --check FILE]\n`)
    process.exit(2)
  }
  const text = fs.readFileSync(file, 'utf8')
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  if (start === -1 || end < start) {
    process.stderr.write(`${tool}: ${file} has no ${START} ... ${END} markers\n`)
    process.exit(1)
  }
  const updated = text.slice(0, start + START.length) + '\n\n' + content + '\n' + text.slice(end)
  if (mode === '--write') {
    fs.writeFileSync(file, updated)
  } else if (updated !== text) {
    process.stderr.write(`${tool}: ${what} in ${file} are out of date; run: node scripts/${tool}.js --write ${file}\n`)
    process.exit(1)
  }
}

module.exports = { runGenerator }
