/**
 * Human-readable logs through pino-pretty — an optional peer the user installs (npm i -D
 * pino-pretty), never a dependency of ours: production logs stay JSON lines.
 *
 * pino-pretty is looked up from the working directory (the user's project, where a dev
 * dependency lives) and then from this package; `pretty-logs` unset means "pretty on a
 * terminal when it is installed", set means "exactly that", and set to on without pino-pretty
 * is a configuration error said once at start-up.
 */
import path from 'node:path'
import { createRequire } from 'node:module'
import type { DestinationStream } from 'pino'
import { KnobError } from '../config/values'

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream

/** The installed pino-pretty's factory, or undefined when it is not installed. */
export function findPinoPretty (cwd: string = process.cwd()): PrettyFactory | undefined {
  for (const from of [path.join(cwd, 'package.json'), __filename]) {
    try {
      const mod = createRequire(from)('pino-pretty') as PrettyFactory | { default: PrettyFactory }
      return typeof mod === 'function' ? mod : mod.default
    } catch {
      // not installed there
    }
  }
  return undefined
}

/**
 * Decides, in each process (the worker's stdout is the primary's), whether logs are pretty.
 * `setting` is the pretty-logs knob (undefined = auto).
 */
export function wantsPretty (setting: boolean | undefined, isTTY: boolean = process.stdout.isTTY === true, find = findPinoPretty): PrettyFactory | undefined {
  if (setting === false) return undefined
  const factory = find()
  if (setting === true && factory === undefined) {
    throw new KnobError('pretty-logs is on but pino-pretty is not installed; accepted: install it (npm i -D pino-pretty) or turn pretty-logs off')
  }
  return setting === true || isTTY ? factory : undefined
}

/** A synchronous pretty stream on stdout: the launcher calls process.exit() right after its last lines. */
export function prettyStream (factory: PrettyFactory): DestinationStream {
  return factory({ sync: true, destination: 1, colorize: process.stdout.isTTY === true, ignore: 'hostname' })
}
