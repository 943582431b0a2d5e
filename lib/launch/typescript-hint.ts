/**
 * A TypeScript app that node could not load gets one more sentence: how to make it load. Node
 * 22.18+ / 23.6+ strip types by themselves (22.6+ with --experimental-strip-types); older nodes,
 * TypeScript-only syntax (enum, namespace) and ESM syntax in a CommonJS package need something
 * else, and node's own message (`Unexpected token ':'`) says none of it. Pure.
 */
import path from 'node:path'

export interface NodeTypeScript {
  /** process.versions.node */
  version: string
  /** process.features.typescript: 'strip' | 'transform' when node strips types, else falsy. */
  stripping: boolean
  /** node was started with a loader already (--import/--require/--loader). */
  loaderGiven: boolean
}

export function typescriptHint (file: string, err: unknown, node: NodeTypeScript): string | undefined {
  const ext = path.extname(file)
  if (!['.ts', '.mts', '.cts', '.tsx'].includes(ext)) return undefined
  const name = path.basename(file)
  const code = (err as { code?: string } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  const loader = `prodserver serve ${name} --import tsx (after npm i -D tsx)`
  if (node.loaderGiven) return undefined // the user's loader ran: its own error is the story
  if (code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') {
    return `node's type stripping cannot run this syntax (enum, namespace, parameter properties); use a loader: ${loader}`
  }
  if (node.stripping && /Cannot use import statement outside a module|Unexpected token 'export'/.test(message)) {
    return `${name} uses ESM syntax but its package is CommonJS: rename it to .mts, or set "type": "module" in package.json, or use a loader: ${loader}`
  }
  if (node.stripping) return `if it is TypeScript syntax node does not strip, use a loader: ${loader}`
  const [major, minor] = node.version.split('.').map(Number)
  const flag = major > 22 || (major === 22 && minor >= 6) ? ', or NODE_OPTIONS=--experimental-strip-types' : ''
  return `node ${node.version} does not run TypeScript by itself: ${loader}${flag}`
}
