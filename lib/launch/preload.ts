/**
 * --import / --require: modules node preloads before the app (a TypeScript loader such as tsx,
 * dotenv/config). They are node's own flags, given to every process that loads the app — the
 * single server process and each cluster worker, reloads included — so a loader behaves exactly
 * as with `node --import tsx app.ts`. Pure: argv in, argv out.
 */
export interface Preloads {
  imports: readonly string[]
  requires: readonly string[]
}

/** node flags for the preloads that `execArgv` does not already carry (`--import x` or `--import=x`). */
export function missingPreloadArgs (execArgv: readonly string[], preloads: Preloads): string[] {
  const has = (flag: string, value: string): boolean =>
    execArgv.some((a, i) => a === `${flag}=${value}` || (a === flag && execArgv[i + 1] === value) ||
      (flag === '--require' && (a === `-r=${value}` || (a === '-r' && execArgv[i + 1] === value))))
  const args: string[] = []
  // node runs --require modules before --import ones; keep that order.
  for (const r of preloads.requires) if (!has('--require', r)) args.push('--require', r)
  for (const i of preloads.imports) if (!has('--import', i)) args.push('--import', i)
  return args
}

/** True when node was started with some loader-like flag, in argv or NODE_OPTIONS (for error hints). */
export function hasLoaderFlags (execArgv: readonly string[], nodeOptions = ''): boolean {
  const flags = [...execArgv, ...nodeOptions.split(/\s+/)]
  return flags.some((a) => /^(--import|--require|-r|--loader|--experimental-loader)(=|$)/.test(a))
}
