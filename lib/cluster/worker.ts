/**
 * The worker side: build the app, listen, tell the primary `ready`, then follow the primary.
 *
 * - Signals are ignored here: Ctrl-C / `kill -TERM -<pgid>` reach the whole process group, and
 *   the primary decides the order of the shutdown (pitfall 11). The primary talks over IPC.
 * - If the IPC channel goes away (primary killed), node:cluster's worker exits by itself
 *   (research §4.3): a worker never outlives its supervisor.
 * - A heartbeat from this event loop proves the loop is alive (pitfall 16: Gunicorn's file-based
 *   heartbeat can block on a slow /tmp; an IPC message cannot be sent by a blocked loop).
 * - A failure before `ready` is reported to the primary, which halts instead of fork-looping
 *   (Gunicorn's WORKER_BOOT_ERROR → HaltServer, research §2.4).
 */
import { randomInt } from 'node:crypto'
import type { Plan } from '../plan/types'
import type { RunningServer } from '../server/index'
import type { DrainOptions } from '../server/drain'
import { startAppServer, firstLine, bootErrorStack } from './app-module'
import type { AppSource, ServeHandle } from './handle'
import { heartbeatIntervalMs, isProtocolMessage, WORKER_BOOT_ERROR, type PrimaryMessage, type WorkerMessage } from './protocol'
import { launcherLog } from './log'
import { FINAL_SNAPSHOT_ID } from '../ops/types'
import { ownHeap } from '../system/process-memory'

type Body<M> = M extends unknown ? Omit<M, 'prodserver'> : never

function send (message: Body<WorkerMessage>): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve()
    process.send({ prodserver: 1, ...message }, undefined, {}, () => resolve())
  })
}

const ignore = (): void => {}
/** How long a worker waits for the primary's answer (farewell, listeners closed) before going on anyway. */
const ANSWER_TIMEOUT_MS = 2000
/** The primary's answer to `stop-accepting` may take two of its 2 s waits (primary.ts). */
const STOP_ACCEPTING_TIMEOUT_MS = 5000

export async function runWorker (plan: Plan, source: AppSource): Promise<ServeHandle> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, ignore)

  let server: RunningServer | undefined
  let exiting = false
  let unreadyMs = 0
  let drainOptions: DrainOptions = {}
  const drainAndExit = (): Promise<void> => {
    if (exiting) return Promise.resolve()
    exiting = true
    // Not listening yet: nothing to drain.
    if (server === undefined) process.exit(0)
    const running = server
    return running.drain(plan.supervisor.gracefulTimeoutMs, unreadyMs, drainOptions)
      .then(async () => {
        await sendFinalMetrics(running)
        await farewell()
        process.exit(0)
      }, () => process.exit(1))
  }
  const answers = new Map<PrimaryMessage['type'], () => void>()
  /** Sends `message`, then waits for the primary's `answer` (bounded: a gone primary cannot keep us). */
  const exchange = (message: Body<WorkerMessage>, answer: PrimaryMessage['type'], timeoutMs = ANSWER_TIMEOUT_MS): Promise<void> => new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve()
    const done = (): void => { clearTimeout(timer); process.off('disconnect', done); answers.delete(answer); resolve() }
    const timer = setTimeout(done, timeoutMs)
    answers.set(answer, done)
    process.once('disconnect', done)
    void send(message)
  })
  /**
   * Exiting right after the drain can strand a client: node:cluster's primary may have handed this
   * worker a new connection just before it learnt that our listener closed, and if we exit before
   * reading that message the primary keeps the socket forever (it re-routes a connection only when
   * the worker answers "not accepted"). So: say `drained` and wait for the primary's `farewell`.
   * The channel is ordered both ways, so every hand-off sent to us comes before the farewell and
   * is answered (and re-routed) by node:cluster before we exit.
   */
  const farewell = (): Promise<void> => exchange({ type: 'drained' }, 'farewell')
  /**
   * On a stop, the shared listener (node:cluster's, in the primary) closes only when every worker
   * has closed its own: until then new connections still arrive and queue, and closing resets
   * them. So no worker answers `Connection: close` — which makes a proxy open new connections —
   * before the primary says every listener is closed.
   */
  const listenersClosed = (): Promise<void> => exchange({ type: 'listeners-closed' }, 'listeners-closed')
  /**
   * Before that, the primary closes node:cluster's shared listener itself and hands out what it
   * already accepted: node:cluster would reset those when the last worker's listener closes.
   */
  const stopAccepting = (): Promise<void> => exchange({ type: 'stop-accepting' }, 'accepting-stopped', STOP_ACCEPTING_TIMEOUT_MS)
  process.on('message', (m: unknown) => {
    if (!isProtocolMessage<PrimaryMessage>(m)) return
    if (m.type === 'farewell' || m.type === 'listeners-closed' || m.type === 'accepting-stopped') {
      answers.get(m.type)?.()
    } else if (m.type === 'drain') {
      unreadyMs = m.unreadyMs ?? 0
      drainOptions = m.handoff === true ? { handOff: sendToPrimary } : { stopAccepting, listenersClosed }
      void drainAndExit()
    } else if (m.type === 'metrics') {
      const collect = server?.collectMetrics
      const id = m.id
      // Still booting: an empty answer, so the scrape does not wait for this worker.
      void (collect === undefined ? Promise.resolve([]) : collect()).catch(() => []).then((metrics) => send({ type: 'metrics', id, metrics }))
    }
  })

  startHeartbeat(plan, () => server)

  try {
    server = await startAppServer(plan, source, launcherLog('worker', plan.logs))
  } catch (err) {
    await send({ type: 'boot-error', message: firstLine(err), stack: bootErrorStack(err) })
    process.exit(WORKER_BOOT_ERROR)
  }
  if (exiting) {
    // A drain arrived while we were booting (stop during start-up).
    exiting = false
    void drainAndExit()
  } else {
    await send({ type: 'ready', addresses: server.addresses, heap: ownHeap() })
  }
  return { role: 'worker', addresses: server.addresses, close: drainAndExit }
}

/**
 * An idle keep-alive connection goes back to the primary, which gives it to a live worker
 * (cluster/handoff.ts). Resolves once the handle is written to the channel: the descriptor in
 * flight keeps the connection open, so our own copy may then be closed.
 */
function sendToPrimary (handle: object): Promise<boolean> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve(false)
    try {
      process.send({ prodserver: 1, type: 'handoff' } satisfies WorkerMessage, handle as never, {}, (err) => resolve(err == null))
    } catch {
      resolve(false)
    }
  })
}

/**
 * After the drain, the worker's last numbers go to the primary, which keeps them in the metrics
 * port's sums (ops/retired-counters.ts): a reload or a recycle must not look like a counter reset.
 */
async function sendFinalMetrics (server: RunningServer): Promise<void> {
  if (server.collectMetrics === undefined) return
  const metrics = await server.collectMetrics().catch(() => undefined)
  if (metrics !== undefined) await send({ type: 'metrics', id: FINAL_SNAPSHOT_ID, metrics })
}

/**
 * One timer: heartbeat, and the max-requests check (Gunicorn: max_requests + randint(0, jitter)
 * per worker, so workers do not all recycle together — gunicorn#3427). The worker only asks; the
 * primary recycles one worker at a time, replacement ready first.
 */
function startHeartbeat (plan: Plan, current: () => RunningServer | undefined): void {
  const { workerTimeoutMs, maxRequests, maxRequestsJitter } = plan.supervisor
  const limit = maxRequests > 0 ? maxRequests + randomInt(0, maxRequestsJitter + 1) : 0
  let asked = false
  const period = limit > 0 ? Math.min(heartbeatIntervalMs(workerTimeoutMs), 100) : heartbeatIntervalMs(workerTimeoutMs)
  let sinceBeat = Infinity
  const timer = setInterval(() => {
    const server = current()
    const requests = server?.requestCount() ?? 0
    sinceBeat += period
    if (sinceBeat >= heartbeatIntervalMs(workerTimeoutMs)) {
      sinceBeat = 0
      // The heap rides on the heartbeat: the primary's memory budget needs it (memory-watch.ts).
      void send({ type: 'heartbeat', requests, heap: ownHeap() })
    }
    if (limit > 0 && !asked && server !== undefined && !server.draining && requests >= limit) {
      asked = true
      void send({ type: 'recycle', requests, limit })
    }
  }, period)
  timer.unref()
}
