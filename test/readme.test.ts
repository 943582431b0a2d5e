// The README's knob tables are generated from the knob table in the code (one definition per
// fact): a knob added, renamed or re-defaulted without regenerating the README fails here.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import fs from 'node:fs'

const root = path.join(__dirname, '..')

t.test('the README documents every knob exactly as the code defines it', async (t) => {
  const run = spawnSync(process.execPath, [path.join(root, 'scripts', 'knob-table.js'), '--check', path.join(root, 'README.md')], { encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr || 'README knob tables match the code')
})

t.test('the README lists every sessions option exactly as the code defines it', async (t) => {
  const run = spawnSync(process.execPath, [path.join(root, 'scripts', 'session-options-table.js'), '--check', path.join(root, 'README.md')], { encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr || 'README options table matches the code')
})

t.test('the README gives the install-and-run and the test commands', async (t) => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  t.match(readme, /npm ci && npm start/, 'one command installs and runs the example with file sessions')
  t.match(readme, /npm ci && npm test/, 'one command runs the whole test suite')
  const ci = fs.readFileSync(path.join(root, '.ci', 'run'), 'utf8')
  t.match(ci, /^npm test$/m, '.ci/run runs exactly the README test command')
})
