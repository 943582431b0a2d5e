/**
 * Single mode with --import/--require that this node was not started with: the server runs in
 * a child started with them (server-child.ts); this process relays stop signals and exits with
 * the child's code. A loader must be in place before the app's first module is read, and only
 * node's own flags give every loader (ESM hooks included) exactly its documented behaviour.
 */
import type { ServeHandle } from '../cluster/handle'
import { ServerChild, exitCodeOf } from './server-child'

export async function runRelaunched (extraExecArgv: readonly string[]): Promise<ServeHandle> {
  const child = new ServerChild(extraExecArgv)
  const relay = (signal: NodeJS.Signals): void => child.signal(signal as 'SIGTERM' | 'SIGINT')
  process.on('SIGTERM', relay)
  process.on('SIGINT', relay)
  let closedInCode = false
  void child.exited.then((exit) => {
    process.removeListener('SIGTERM', relay)
    process.removeListener('SIGINT', relay)
    if (!closedInCode) process.exit(exitCodeOf(exit))
  })
  const addresses = await child.listening
  return {
    role: 'single',
    addresses,
    close: async () => {
      closedInCode = true
      child.signal('SIGTERM')
      await child.exited
    }
  }
}
