/**
 * A Fastify-shaped logger that keeps the warnings (what an operator would see) for assertions.
 */
import type { FastifyBaseLogger } from 'fastify'

export function warningLog (): FastifyBaseLogger & { lines: string[] } {
  const lines: string[] = []
  const log = {
    lines,
    warn: (a: unknown, b?: string) => { lines.push(typeof a === 'string' ? a : String(b)) },
    info: () => {},
    error: () => {},
    debug: () => {},
    trace: () => {},
    fatal: () => {},
    child: () => log,
    level: 'info',
    silent: () => {}
  }
  return log as unknown as FastifyBaseLogger & { lines: string[] }
}
