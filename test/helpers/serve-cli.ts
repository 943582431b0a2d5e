/**
 * The real `prodserver serve` CLI on a free loopback port, waited for until it serves. A port that
 * another process takes between the probe and the bind (machines here run many suites at once)
 * makes the server exit with EADDRINUSE; then it is started again on another port.
 */
import type { Test } from 'tap'
import path from 'node:path'
import { spawnServer, freePort, ROOT, type ServerProcess } from './process'

export const CLI_JS = path.join(ROOT, 'dist', 'lib', 'cli.js')

export async function serveCli (t: Test, app: string, flags: string[]): Promise<{ p: ServerProcess, port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const p = spawnServer(t, [CLI_JS, 'serve', app, '--host', '127.0.0.1', '--port', String(port), ...flags])
    // The loser of the race times out later: its rejection is expected, not an error.
    const outcome = await Promise.race([
      p.waitLine((l) => l.msg === 'all workers ready' || l.msg === 'listening', 30_000).then(() => 'ready' as const, () => 'timeout' as const),
      p.waitExit(30_000).then(() => 'exited' as const, () => 'timeout' as const)
    ])
    if (outcome === 'ready') return { p, port }
    if (attempt >= 3 || !/EADDRINUSE/.test(p.stdout() + p.stderr())) {
      throw new Error(`prodserver serve exited before it was ready:\n${p.stdout().slice(-2000)}\n${p.stderr().slice(-2000)}`)
    }
  }
}
