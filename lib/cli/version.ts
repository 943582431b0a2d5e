/**
 * The package version, read from package.json at run time: the CLI runs from dist/lib/ (built)
 * or lib/ (tests), so the file is found by walking up rather than by a fixed relative path.
 */
import fs from 'node:fs'
import path from 'node:path'

export function packageVersion (from: string = __dirname): string {
  let dir = from
  for (;;) {
    const file = path.join(dir, 'package.json')
    try {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'fastify-prodserver' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // not here: keep walking up
    }
    const parent = path.dirname(dir)
    if (parent === dir) return 'unknown'
    dir = parent
  }
}
