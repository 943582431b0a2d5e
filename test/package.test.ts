/**
 * What `npm pack` would ship, read the way a consumer's tools read it: a license, no install-time
 * script, fastify as a peer (the app brings its own), source maps that carry their sources, and a
 * declared module type. (test/package-install.test.ts installs the tarball and uses it.)
 */
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import semver from 'semver'

const root = path.join(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

// --ignore-scripts: prepack would clean and rebuild dist/ under the tests running beside this one.
const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: root, encoding: 'utf8' }))[0]
const files: string[] = packed.files.map((f: { path: string }) => f.path)

t.test('the MIT license text ships with the package, as package.json says', async (t) => {
  t.equal(pkg.license, 'MIT')
  t.ok(files.includes('LICENSE'), 'LICENSE is in the tarball')
  t.match(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'), /^MIT License/)
})

t.test('no script runs when a consumer installs the package; the build runs on pack/publish', async (t) => {
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) t.equal(pkg.scripts[hook], undefined, `no ${hook} script`)
  t.match(pkg.scripts.prepack, /npm run build/, 'prepack builds')
  t.match(pkg.scripts.test, /npm run build/, 'npm test builds what the tests need (npm ci no longer does)')
  t.match(pkg.scripts.prestart, /npm run build/, 'so does npm start')
})

t.test('fastify is a peer dependency (the app\'s own fastify), and the range includes the version we test', async (t) => {
  t.equal(pkg.dependencies.fastify, undefined, 'not a dependency: no second fastify next to the app\'s')
  t.ok(pkg.peerDependencies.fastify, 'a peer dependency')
  const tested = JSON.parse(fs.readFileSync(require.resolve('fastify/package.json'), 'utf8')).version
  t.ok(semver.satisfies(tested, pkg.peerDependencies.fastify), `fastify ${tested} (the suite's) satisfies ${pkg.peerDependencies.fastify}`)
  t.ok(semver.satisfies(tested, pkg.devDependencies.fastify), 'and is the dev dependency')
  t.equal(semver.minVersion(pkg.peerDependencies.fastify)?.version, '5.0.0', 'the floor, which package-install.test.ts installs')
  // One fastify-plugin major for the whole tree: @fastify/session and @fastify/cookie use 6.x.
  const sessionFp = JSON.parse(fs.readFileSync(require.resolve('@fastify/session/package.json'), 'utf8')).dependencies['fastify-plugin']
  t.equal(semver.major(semver.minVersion(pkg.dependencies['fastify-plugin']) ?? '0.0.0'), semver.major(semver.minVersion(sessionFp) ?? '0.0.0'), 'the same fastify-plugin major as @fastify/session')
})

t.test('every shipped source map carries its sources; no TypeScript source ships without being a declaration', async (t) => {
  const maps = files.filter((f) => f.endsWith('.map'))
  t.ok(maps.length > 10, `${maps.length} source maps`)
  const missing = maps.filter((m) => {
    const map = JSON.parse(fs.readFileSync(path.join(root, m), 'utf8'))
    return !Array.isArray(map.sourcesContent) || map.sourcesContent.length !== map.sources.length || map.sourcesContent.some((s: unknown) => typeof s !== 'string' || s === '')
  })
  t.same(missing, [], 'each map has the text of each of its sources')
  t.same(files.filter((f) => /\.[cm]?ts$/.test(f) && !/\.d\.[cm]?ts$/.test(f)), [], 'no .ts source files')
})

t.test('every runtime dependency is one the built package loads', async (t) => {
  const sources = files.filter((f) => f.endsWith('.js') || f.endsWith('.mjs')).map((f) => fs.readFileSync(path.join(root, f), 'utf8')).join('\n')
  for (const dep of Object.keys(pkg.dependencies)) {
    t.match(sources, new RegExp(`require\\(["']${dep.replace(/[/.]/g, '\\$&')}(/[^"']*)?["']\\)`), `${dep} is required by the shipped code`)
  }
})

t.test('the module type is declared', async (t) => {
  t.equal(pkg.type, 'commonjs')
})

t.test('import and require get the same API; the ESM entry has its own types (no CJS masquerade)', async (t) => {
  const cjs = require(path.join(root, 'dist', 'index.js'))
  // A real import() (tests are compiled to CommonJS, where import() would become require()).
  const realImport = new Function('url', 'return import(url)') as (url: string) => Promise<Record<string, unknown>>
  const esm = await realImport(pathToFileURL(path.join(root, 'esm', 'index.mjs')).href)
  t.same(Object.keys(esm).filter((k) => k !== 'default').sort(), Object.keys(cjs).filter((k) => k !== 'default' && k !== '__esModule').sort(), 'the same named exports')
  t.equal(esm.default, cjs.sessions, 'the ESM default export is the plugin')
  t.equal(esm.sessions, cjs.sessions)
  t.same(pkg.exports['.'].import, { types: './esm/index.d.mts', default: './esm/index.mjs' })
  t.same(pkg.exports['.'].require, { types: './dist/index.d.ts', default: './dist/index.js' })
  for (const f of ['esm/index.mjs', 'esm/index.d.mts', 'dist/index.d.ts']) t.ok(files.includes(f), `${f} ships`)
})
