/**
 * --watch in single mode: the server runs in a child process (launch/server-child.ts) that is
 * drained and started again after each edit — a module cache cannot be emptied in place. A child
 * that fails to boot (a syntax error mid-edit) is reported and started again on the next edit;
 * the watcher itself only stops on SIGINT/SIGTERM.
 */
import path from 'node:path'
import type { ServeHandle } from '../cluster/handle'
import type { LauncherLog } from '../cluster/log'
import { ServerChild, exitCodeOf, type ChildExit } from '../launch/server-child'
import { watchTree } from './file-watcher'

export async function runWatchedSingle (extraExecArgv: readonly string[], roots: readonly string[], log: LauncherLog): Promise<ServeHandle> {
  let child = new ServerChild(extraExecArgv)
  let stopping = false
  let restarting: Promise<void> | undefined
  let again = false
  const cwd = process.cwd()

  const report = (current: ServerChild): void => {
    void current.exited.then((exit) => {
      if (stopping || current !== child || restarting !== undefined) return
      // Exit 0 on its own: stopped on purpose (`prodserver stop`); the watcher goes with it.
      if (exit.code === 0) return finish(exit)
      log.error({ code: exit.code, signal: exit.signal }, 'watch: the server exited; it starts again on the next change')
    })
  }
  const finish = (exit: ChildExit): void => {
    stopping = true
    void watcher.close().then(() => process.exit(exitCodeOf(exit)))
  }

  const restart = async (): Promise<void> => {
    child.signal('SIGTERM')
    await child.exited
    if (stopping) return
    child = new ServerChild(extraExecArgv)
    report(child)
  }
  const watcher = watchTree(roots, (files) => {
    if (stopping) return
    log.info({ changed: files.map((f) => path.relative(cwd, f)) }, 'watch: restarting')
    if (restarting !== undefined) { again = true; return }
    restarting = (async () => {
      do {
        again = false
        await restart()
      } while (again && !stopping)
      restarting = undefined
    })()
  })

  const onSignal = (signal: NodeJS.Signals): void => {
    if (!stopping) {
      stopping = true
      void watcher.close()
      void (async () => {
        await restarting
        const exit = await child.exited
        process.exit(exitCodeOf(exit))
      })()
    }
    child.signal(signal as 'SIGTERM' | 'SIGINT')
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  report(child)

  await watcher.ready
  log.info({ roots: roots.map((r) => path.relative(cwd, r) || '.') }, 'watching for changes')
  const addresses = await Promise.race([child.listening, child.exited.then(() => [] as string[])])
  return {
    role: 'single',
    addresses,
    close: async () => {
      stopping = true
      process.removeListener('SIGTERM', onSignal)
      process.removeListener('SIGINT', onSignal)
      await watcher.close()
      await restarting
      child.signal('SIGTERM')
      await child.exited
    }
  }
}
