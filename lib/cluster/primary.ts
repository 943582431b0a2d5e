/**
 * The primary: a Gunicorn-style arbiter on top of node:cluster.
 *
 * Events come in (signals, worker messages, worker exits) and are recorded; one loop — tick() —
 * decides: it handles queued signals, kills silent workers, and brings the workers back to the
 * target (spawn missing ones, drain surplus ones, advance the one replacement in progress).
 * Signal handlers only queue the signal (arbiter.py's SIG_QUEUE).
 *
 * Replacements (reload, max-requests recycle) are "rotations", one at a time: fork the new
 * worker, wait for its `ready`, THEN drain the old one, and start the next rotation only when the
 * old one has exited. PM2 kills the old worker after listen_timeout even when the new one never
 * became ready (research §4.1, pitfall 10); Gunicorn recycles workers together (gunicorn#3427,
 * pitfall 17). One at a time also keeps at most target+1 processes alive, so the per-worker heap
 * cap the planner computed from the memory budget still holds during a reload.
 *
 * Memory replacements are the exception: each starts at once, beside any other replacement,
 * because an over-budget worker keeps growing towards its heap cap while it waits. Workers leaking
 * alike cross the threshold together, and queued, the last one waited for every earlier
 * replacement to boot (measured: the second of two reached the cap in 1 of 3 runs of
 * test/cluster-memory.test.ts). A fresh worker is small (~65 MB RSS of a 200 MB budget), so N of
 * them beside the N old ones cost far less than the old ones would if left to grow.
 */
import cluster, { type Worker } from 'node:cluster'
import { randomBytes } from 'node:crypto'
import type { Plan } from '../plan/types'
import { RestartBackoff } from './backoff'
import { ConnectionHandoff } from './handoff'
import { StopBarrier } from './stop-barrier'
import { closeSharedListeners, sharedListenerHandles, sharedListenerPorts, watchSharedListeners } from './shared-listeners'
import { closeWhenAcceptQueueEmpty } from '../server/accept-queue'
import type { ServeHandle } from './handle'
import type { LauncherLog } from './log'
import { defaultSessionDir, workersDefaultDir } from '../sessions/stores/file/default-dir'
import { heartbeatIntervalMs, isProtocolMessage, WORKER_BOOT_ERROR, WORKER_ENV, type PrimaryMessage, type WorkerMessage } from './protocol'
import { SupervisorMetrics, type RestartReason } from '../ops/supervisor-metrics'
import { startMetricsServer, type MetricsEndpoint } from '../ops/metrics-server'
import { MemoryWatch, roundMb, type MemoryReading } from './memory-watch'
import { exitCause, type Verdict } from './memory-budget'
import { rssMb, type HeapUse } from '../system/process-memory'
import { openControlChannel } from '../control/attach'
import { buildStatusReport, zeroRestarts } from '../control/status-report'
import type { ControlHandlers } from '../control/server'
import type { ReloadResult, RestartCounts, StatusReport, ServerInfo } from '../control/protocol'
import { missingPreloadArgs } from '../launch/preload'

type WorkerState = 'booting' | 'ready' | 'draining'
type RotationReason = 'reload' | 'recycle' | 'memory'
type QueuedSignal = 'SIGHUP' | 'SIGTERM' | 'SIGINT' | 'SIGTTIN' | 'SIGTTOU'
const HANDLED_SIGNALS: QueuedSignal[] = ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGTTIN', 'SIGTTOU']

/** The worker's own drain ends at graceful-timeout; this margin lets its onClose hooks finish before SIGKILL. */
const KILL_MARGIN_MS = 1000
/**
 * On a stop, how long the primary waits for its accept queue to empty, then for the connections it
 * accepted to reach a worker, before letting the workers close anyway (each; twice this stays under
 * the worker's wait for the answer, STOP_ACCEPTING_TIMEOUT_MS in worker.ts).
 */
const HANDOUT_TIMEOUT_MS = 2000
/**
 * Until a worker's first message, node itself is starting and loading modules synchronously (seconds
 * on a loaded machine): no heartbeat can exist yet, so worker-timeout alone would kill healthy boots.
 */
const FIRST_MESSAGE_GRACE_MS = 30_000

interface WorkerRecord {
  worker: Worker
  pid: number
  state: WorkerState
  startedAt: number
  readyAt?: number
  lastBeat: number
  /** False until the worker's first message: it has not reached our code yet. */
  heard: boolean
  requests: number
  /** Why it was started (boot, respawn, reload, recycle, memory, scale-up), and its place's restarts so far. */
  startedFor: string
  restarts: Partial<RestartCounts>
  /** The latest heap figures from its heartbeat (memory budget, status). */
  heap?: HeapUse
  drainReason?: string
  killTimer?: NodeJS.Timeout
  bootError?: { message: string, stack?: string }
  timedOut?: boolean
}

interface Rotation {
  reason: RotationReason
  old: WorkerRecord
  fresh: WorkerRecord
}

export interface PrimaryOptions {
  plan: Plan
  log: LauncherLog
  /** Extra env for every worker (e.g. session knobs given as flags or options in code). */
  workerEnv?: Record<string, string>
  env?: NodeJS.ProcessEnv
  /** The app module path (shown by `prodserver status`). */
  app?: string
}

export async function runPrimary (options: PrimaryOptions): Promise<ServeHandle> {
  const supervisor = new Supervisor(options)
  // Before any fork: a metrics port that cannot be bound is a configuration error, found at once.
  await supervisor.startMetrics()
  const control = await openControlChannel({ plan: options.plan, mode: 'cluster', app: options.app, log: options.log, handlers: supervisor.controlHandlers() })
  await supervisor.start()
  control?.publish({ addresses: supervisor.addresses })
  return {
    role: 'primary',
    get addresses () { return supervisor.addresses },
    close: async () => {
      await supervisor.stop('close')
      await control?.close()
    }
  }
}

export class Supervisor {
  addresses: string[] = []

  private readonly plan: Plan
  private readonly log: LauncherLog
  private readonly env: NodeJS.ProcessEnv
  private readonly workerEnv: Record<string, string>
  private readonly workers = new Map<number, WorkerRecord>()
  private readonly signalQueue: QueuedSignal[] = []
  private readonly retireQueue: Array<{ rec: WorkerRecord, reason: RotationReason }> = []
  private readonly backoff = new RestartBackoff()
  private readonly signalHandlers = new Map<QueuedSignal, () => void>()
  private rotation?: Rotation
  /** Memory replacements in progress: concurrent, each its own rotation (see the top). */
  private readonly memoryRotations = new Set<Rotation>()
  private target: number
  private phase: 'starting' | 'running' | 'stopping' | 'halted' = 'starting'
  private spawnNotBefore = 0
  private nextSpawnReason = 'boot'
  private exitWhenStopped = false
  private launchedAt = Date.now()
  private loopTimer?: NodeJS.Timeout
  private spawnTimer?: NodeJS.Timeout
  private wakePending = false
  private onStarted?: () => void
  private onStopped?: () => void
  private stopped?: Promise<void>
  private metrics?: SupervisorMetrics
  private metricsEndpoint?: MetricsEndpoint
  private readonly memory: MemoryWatch
  private readonly handoff: ConnectionHandoff
  private readonly restarts = zeroRestarts()
  /** Restart lineages of crashed workers, handed to their respawns (status shows restarts per worker). */
  private readonly orphanedRestarts: Array<Partial<RestartCounts>> = []
  private reloadWaiters: Array<(result: ReloadResult) => void> = []
  private readonly stopBarrier = new StopBarrier()
  private acceptingStopped: Promise<void> | undefined

  constructor (options: PrimaryOptions) {
    this.plan = options.plan
    this.log = options.log
    this.handoff = new ConnectionHandoff(() => [...this.workers.values()].filter((rec) => rec.state === 'ready').map((rec) => rec.worker), this.log)
    this.env = options.env ?? process.env
    this.target = Math.max(1, options.plan.workers)
    this.workerEnv = { ...options.workerEnv }
    this.adoptSessionSecret()
    this.adoptSessionDir()
    // Ready workers only: a booting one is still loading code, a draining one is on its way out.
    const watched = (): Array<{ pid: number, heap?: HeapUse }> => [...this.workers.values()].filter((rec) => rec.state === 'ready')
    this.memory = new MemoryWatch(this.plan.memory, watched, (pid, verdict, reading) => this.overMemoryBudget(pid, verdict, reading))
  }

  /** metrics-port: Prometheus text for the whole server, every worker's metrics summed. */
  async startMetrics (): Promise<void> {
    const { metricsPort, metricsHost } = this.plan.ops
    if (metricsPort === undefined) return
    const metrics = new SupervisorMetrics(() => {
      const states: Record<string, number> = { booting: 0, ready: 0, draining: 0 }
      for (const rec of this.workers.values()) states[rec.state]++
      return states
    })
    this.metrics = metrics
    // Only workers that reached our code (heard from): before that nobody listens to the request.
    const askable = (): Array<{ pid: number, ask: (id: number) => boolean }> => [...this.workers.values()].filter((rec) => rec.heard).map((rec) => ({
      pid: rec.pid,
      ask: (id) => {
        if (!rec.worker.isConnected()) return false
        try {
          rec.worker.send({ prodserver: 1, type: 'metrics', id } satisfies PrimaryMessage)
          return true
        } catch {
          return false
        }
      }
    }))
    this.metricsEndpoint = await startMetricsServer(metricsHost, metricsPort, async () => await metrics.gather(askable()), this.log)
  }

  /** Forks the workers; resolves once every one of them is ready. */
  start (): Promise<void> {
    // Round-robin in the primary; SCHED_NONE puts most connections on a few workers (pitfall 12).
    cluster.schedulingPolicy = cluster.SCHED_RR
    watchSharedListeners()
    // Each worker's V8 heap is otherwise sized from the whole machine/cgroup, so N workers can
    // jointly exceed the memory they were counted for (pitfall 4).
    // --import/--require (a TypeScript loader): node's own flags, so every worker — reloads too — loads the app through them.
    cluster.setupPrimary({ execArgv: [...withHeapLimit(process.execArgv, this.plan.heapMb), ...missingPreloadArgs(process.execArgv, this.plan.launch)] })
    for (const signal of HANDLED_SIGNALS) {
      const handler = (): void => { this.signalQueue.push(signal); this.wake() }
      this.signalHandlers.set(signal, handler)
      process.on(signal, handler)
    }
    this.launchedAt = Date.now()
    this.log.info({ workers: this.target, threads: this.plan.threads, heapMb: this.plan.heapMb, supervisor: this.plan.supervisor }, 'primary starting')
    this.loopTimer = setInterval(() => this.tick(), heartbeatIntervalMs(this.plan.supervisor.workerTimeoutMs))
    this.memory.start()
    return new Promise((resolve) => {
      this.onStarted = resolve
      this.tick()
    })
  }

  /** Graceful stop: drain every worker within graceful-timeout, SIGKILL the rest. */
  stop (reason: 'close' | 'stop command' | NodeJS.Signals): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'halted') {
      if (reason !== 'close' && reason !== 'stop command') this.quickShutdown(reason)
      return this.stopped ?? Promise.resolve()
    }
    this.phase = 'stopping'
    this.retireQueue.length = 0
    this.rotation = undefined
    this.memoryRotations.clear()
    this.settleReload({ ok: false, error: 'the server is stopping' })
    this.stopped = new Promise((resolve) => { this.onStopped = resolve })
    this.log.info({ reason, workers: this.workers.size, gracefulTimeoutMs: this.plan.supervisor.gracefulTimeoutMs }, 'shutdown: draining workers')
    for (const rec of this.workers.values()) this.drain(rec, 'stop')
    this.wake()
    return this.stopped
  }

  // ── the loop ──────────────────────────────────────────────────────────────────────────────

  private wake (): void {
    if (this.wakePending) return
    this.wakePending = true
    setImmediate(() => { this.wakePending = false; this.tick() })
  }

  private tick (): void {
    this.handleSignals()
    this.killSilentWorkers()
    this.manageWorkers()
    this.finishIfStopped()
  }

  private handleSignals (): void {
    let signal: QueuedSignal | undefined
    while ((signal = this.signalQueue.shift()) !== undefined) {
      switch (signal) {
        case 'SIGHUP': this.reload(); break
        case 'SIGTTIN': this.scale(+1); break
        case 'SIGTTOU': this.scale(-1); break
        case 'SIGTERM':
        case 'SIGINT':
          this.exitWhenStopped = true
          void this.stop(signal)
          break
      }
    }
  }

  /**
   * A worker that sent nothing for worker-timeout has a blocked event loop. SIGKILL directly:
   * Gunicorn's SIGABRT first step exists for Python's handler; a blocked JS loop runs no handler.
   */
  private killSilentWorkers (): void {
    const timeout = this.plan.supervisor.workerTimeoutMs
    if (timeout <= 0) return
    const now = Date.now()
    for (const rec of this.workers.values()) {
      if (rec.state === 'draining' || rec.timedOut === true) continue
      const silentMs = now - rec.lastBeat
      if (silentMs <= (rec.heard ? timeout : Math.max(timeout, FIRST_MESSAGE_GRACE_MS))) continue
      rec.timedOut = true
      this.log.error({ worker: rec.pid, silentMs, timeoutMs: timeout }, 'worker timeout')
      rec.worker.process.kill('SIGKILL')
    }
  }

  /** Converge: the one replacement in progress moves on, then the count goes back to target. */
  private manageWorkers (): void {
    if (this.phase === 'stopping' || this.phase === 'halted') return
    this.advanceRotation()

    const counted = this.countedWorkers()
    if (counted.length < this.target) {
      const wait = this.spawnNotBefore - Date.now()
      if (wait > 0) {
        if (this.spawnTimer === undefined) {
          this.spawnTimer = setTimeout(() => { this.spawnTimer = undefined; this.wake() }, wait)
        }
        return
      }
      for (let i = counted.length; i < this.target; i++) this.spawn(this.nextSpawnReason, this.orphanedRestarts.shift())
    } else if (counted.length > this.target) {
      const surplus = counted
        .filter((rec) => !this.beingReplaced(rec))
        .sort((a, b) => a.startedAt - b.startedAt)
        .slice(0, counted.length - this.target)
      for (const rec of surplus) this.drain(rec, 'scale-down')
    }
  }

  /** Workers that make up the target: not draining, and not a replacement still booting. */
  private countedWorkers (): WorkerRecord[] {
    const booting = new Set([this.rotation, ...this.memoryRotations].filter((r) => r !== undefined && r.old.state !== 'draining').map((r) => r?.fresh))
    return [...this.workers.values()].filter((rec) => rec.state !== 'draining' && !booting.has(rec))
  }

  /** The old worker of a replacement in progress. */
  private beingReplaced (rec: WorkerRecord): boolean {
    return this.rotation?.old === rec || [...this.memoryRotations].some((r) => r.old === rec)
  }

  /** The new worker of a replacement in progress. */
  private isReplacement (rec: WorkerRecord): boolean {
    return this.rotation?.fresh === rec || [...this.memoryRotations].some((r) => r.fresh === rec)
  }

  private memoryRotationOf (rec: WorkerRecord, side: 'old' | 'fresh'): Rotation | undefined {
    return [...this.memoryRotations].find((r) => r[side] === rec)
  }

  private advanceRotation (): void {
    // Never drain the old worker before its replacement serves (pitfall 10).
    for (const m of this.memoryRotations) if (m.fresh.state === 'ready' && m.old.state !== 'draining') this.drain(m.old, m.reason)
    const r = this.rotation
    if (r === undefined) {
      let next
      while ((next = this.retireQueue.shift()) !== undefined) {
        if (this.workers.has(next.rec.worker.id) && next.rec.state !== 'draining' && !this.beingReplaced(next.rec)) break
      }
      if (next === undefined) return
      const fresh = this.spawn(next.reason, withRestart(next.rec.restarts, next.reason))
      this.rotation = { reason: next.reason, old: next.rec, fresh }
      this.log.info({ reason: next.reason, old: next.rec.pid, fresh: fresh.pid, left: this.retireQueue.length }, 'replacing worker: new one booting')
      return
    }
    // Never drain the old worker before its replacement serves (pitfall 10).
    if (r.fresh.state === 'ready' && r.old.state !== 'draining') this.drain(r.old, r.reason)
  }

  private finishIfStopped (): void {
    if ((this.phase !== 'stopping' && this.phase !== 'halted') || this.workers.size > 0) return
    if (this.loopTimer !== undefined) clearInterval(this.loopTimer)
    if (this.spawnTimer !== undefined) clearTimeout(this.spawnTimer)
    this.loopTimer = undefined
    this.memory.stop()
    for (const [signal, handler] of this.signalHandlers) process.removeListener(signal, handler)
    this.signalHandlers.clear()
    void this.metricsEndpoint?.close()
    if (this.phase === 'halted') {
      this.log.fatal('halted')
      process.exit(WORKER_BOOT_ERROR)
    }
    this.log.info('stopped')
    this.onStopped?.()
    if (this.exitWhenStopped) process.exit(0)
  }

  // ── behaviours ────────────────────────────────────────────────────────────────────────────

  /** SIGHUP: replace every worker, one at a time; new workers load the app from disk again. */
  private reload (): void {
    if (this.phase === 'stopping' || this.phase === 'halted') return
    const current = [...this.workers.values()].filter((rec) => rec.state !== 'draining' && !this.isReplacement(rec))
    const queued = new Set(this.retireQueue.map((e) => e.rec))
    for (const rec of current) if (!queued.has(rec) && !this.beingReplaced(rec)) this.retireQueue.push({ rec, reason: 'reload' })
    this.log.info({ workers: current.map((rec) => rec.pid) }, 'reload: replacing workers one at a time')
    if (!this.reloadPending()) this.settleReload({ ok: true, workers: this.servingPids() })
  }

  // ── the control socket (prodserver status / reload / stop) ─────────────────────────────────

  controlHandlers (): ControlHandlers {
    return {
      status: (info) => this.statusReport(info),
      reload: () => new Promise((resolve) => {
        if (this.phase === 'stopping' || this.phase === 'halted') return resolve({ ok: false, error: 'the server is stopping' })
        this.reloadWaiters.push(resolve)
        this.signalQueue.push('SIGHUP')
        this.wake()
      }),
      stop: () => {
        // Like SIGTERM, but a second stop command waits instead of killing.
        if (this.phase !== 'stopping' && this.phase !== 'halted') {
          this.exitWhenStopped = true
          void this.stop('stop command')
        }
        return { deadlineMs: this.plan.ops.drainDelayMs + this.plan.supervisor.gracefulTimeoutMs + KILL_MARGIN_MS }
      }
    }
  }

  private statusReport (info: Omit<ServerInfo, 'socket' | 'token'>): StatusReport {
    const processes = [...this.workers.values()].map((rec) => ({
      ...rec, rssMb: rssMb(rec.pid), reading: this.memory.reading(rec.pid)
    }))
    return buildStatusReport({ info, phase: this.phase, plan: this.plan, processes, restarts: { ...this.restarts }, memory: this.memory.summary() })
  }

  private reloadPending (): boolean {
    return this.rotation?.reason === 'reload' || this.retireQueue.some((e) => e.reason === 'reload')
  }

  private settleReload (result: ReloadResult): void {
    const waiters = this.reloadWaiters
    this.reloadWaiters = []
    for (const resolve of waiters) resolve(result)
  }

  private servingPids (): number[] {
    return [...this.workers.values()].filter((rec) => rec.state !== 'draining').map((rec) => rec.pid)
  }

  /** SIGTTIN / SIGTTOU: one worker more or less, never below one. */
  private scale (delta: 1 | -1): void {
    if (this.phase === 'stopping' || this.phase === 'halted') return
    const before = this.target
    this.target = Math.max(1, this.target + delta)
    this.nextSpawnReason = 'scale-up'
    this.log.info({ from: before, to: this.target }, delta > 0 ? 'scale up' : 'scale down')
  }

  private recycleRequested (rec: WorkerRecord, requests: number, limit: number): void {
    if (this.phase !== 'running' || rec.state !== 'ready') return
    if (this.beingReplaced(rec) || this.retireQueue.some((e) => e.rec === rec)) return
    this.retireQueue.push({ rec, reason: 'recycle' })
    this.log.info({ worker: rec.pid, requests, limit }, 'recycle requested (max-requests)')
  }

  /** Over its memory budget: replaced at once, beside any other replacement, the same lossless way. */
  private overMemoryBudget (pid: number, verdict: Exclude<Verdict, { action: 'none' }>, reading: MemoryReading): void {
    const rec = [...this.workers.values()].find((w) => w.pid === pid)
    if (rec === undefined || this.phase !== 'running' || rec.state !== 'ready') return
    const figures = { worker: pid, rssMb: roundMb(reading.rssMb), heapUsedMb: roundMb(reading.heapUsedMb), heapLimitMb: roundMb(reading.heapLimitMb), budgetMb: this.plan.memory.budgetMb }
    if (verdict.action === 'too-small') {
      this.log.warn({ ...figures, why: verdict.reason, action: 'none' }, 'worker-memory-mb is too small for this app: the worker was over its memory budget since it started, so a replacement would be too (raise worker-memory-mb)')
      return
    }
    if (this.beingReplaced(rec)) return
    this.log.warn({ ...figures, why: verdict.reason, reason: 'memory' }, 'worker over its memory budget: replacing it')
    // A queued reload or recycle of it is skipped: its replacement loads the app afresh anyway.
    const fresh = this.spawn('memory', withRestart(rec.restarts, 'memory'))
    this.memoryRotations.add({ reason: 'memory', old: rec, fresh })
    const booting = [...this.memoryRotations].filter((m) => m.fresh.state === 'booting').length
    this.log.info({ reason: 'memory', old: rec.pid, fresh: fresh.pid, booting }, 'replacing worker: new one booting')
    this.wake()
  }

  private drain (rec: WorkerRecord, reason: string): void {
    if (rec.state === 'draining') return
    rec.state = 'draining'
    rec.drainReason = reason
    // Only a shutdown makes the instance unready; during a rotation the other workers serve.
    const unreadyMs = reason === 'stop' ? this.plan.ops.drainDelayMs : 0
    // Others keep serving (a rotation, a scale-down): idle keep-alive connections move to them.
    const handoff = reason !== 'stop' && reason !== 'halt'
    if (!handoff) this.stopBarrier.expect(rec.worker)
    const message: PrimaryMessage = { prodserver: 1, type: 'drain', unreadyMs, handoff }
    try {
      rec.worker.send(message)
    } catch {
      // IPC already closed: the worker is on its way out; the exit event follows.
    }
    rec.killTimer = setTimeout(() => {
      this.log.warn({ worker: rec.pid, gracefulTimeoutMs: this.plan.supervisor.gracefulTimeoutMs }, 'drain took too long: killing worker')
      rec.worker.process.kill('SIGKILL')
    }, this.plan.supervisor.gracefulTimeoutMs + unreadyMs + KILL_MARGIN_MS)
    rec.killTimer.unref()
    const draining = [...this.workers.values()].filter((w) => w.state === 'draining').length
    this.log.info({ worker: rec.pid, reason, draining, unreadyMs }, 'worker draining')
  }

  /**
   * On a stop, before any worker closes its listener: close node:cluster's shared listeners (new
   * connects are refused), then wait until every connection the primary accepted has reached a
   * worker — node:cluster would reset the ones still queued when the last worker closes. Once.
   */
  private stopAccepting (): Promise<void> {
    this.acceptingStopped ??= (async () => {
      const began = performance.now()
      let listeners = 0
      await closeWhenAcceptQueueEmpty(sharedListenerPorts(), sharedListenerHandles(), HANDOUT_TIMEOUT_MS, () => { listeners = closeSharedListeners() })
      const settled = await this.handoff.whenNoneInTransit(HANDOUT_TIMEOUT_MS)
      this.log.info({ listeners, ms: Math.round(performance.now() - began), settled }, 'shared listeners closed')
    })()
    return this.acceptingStopped
  }

  private quickShutdown (signal: NodeJS.Signals): void {
    this.log.warn({ signal }, 'second signal during shutdown: killing workers now')
    for (const rec of this.workers.values()) rec.worker.process.kill('SIGKILL')
  }

  // ── workers: spawn, messages, exits ────────────────────────────────────────────────────────

  private spawn (reason: string, restarts: Partial<RestartCounts> = {}): WorkerRecord {
    const env: Record<string, string> = {
      ...this.workerEnv,
      [WORKER_ENV.plan]: JSON.stringify(this.plan),
      [WORKER_ENV.workerCount]: String(this.target)
    }
    // A UV_THREADPOOL_SIZE the operator set explicitly wins; otherwise the plan's thread count.
    if (this.env.UV_THREADPOOL_SIZE === undefined || this.env.UV_THREADPOOL_SIZE === '') env.UV_THREADPOOL_SIZE = String(this.plan.threads)
    const worker = cluster.fork(env)
    this.handoff.watch(worker)
    const now = Date.now()
    const rec: WorkerRecord = { worker, pid: worker.process.pid ?? 0, state: 'booting', startedAt: now, lastBeat: now, heard: false, requests: 0, startedFor: reason, restarts }
    this.workers.set(worker.id, rec)
    worker.on('message', (m: unknown) => this.onMessage(rec, m))
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.reap(rec, code, signal))
    // EPIPE on send to a dying worker must not crash the primary.
    worker.on('error', (err: Error) => this.log.warn({ worker: rec.pid, err: err.message }, 'worker IPC error'))
    this.log.info({ worker: rec.pid, reason }, 'worker started')
    return rec
  }

  private onMessage (rec: WorkerRecord, m: unknown): void {
    if (!isProtocolMessage<WorkerMessage>(m)) return
    rec.lastBeat = Date.now()
    rec.heard = true
    switch (m.type) {
      case 'heartbeat':
        rec.requests = m.requests
        rec.heap = m.heap
        break
      case 'ready':
        rec.heap = m.heap
        this.workerReady(rec, m.addresses)
        break
      case 'boot-error':
        rec.bootError = { message: m.message, stack: m.stack }
        this.log.error({ worker: rec.pid, error: m.message, stack: m.stack }, 'worker failed to boot')
        break
      case 'recycle':
        this.recycleRequested(rec, m.requests, m.limit)
        break
      case 'metrics':
        this.metrics?.answer(rec.pid, m.id, m.metrics)
        return // an answer to a scrape changes nothing the loop decides
      case 'drained':
        // In order behind the worker's own "listener closed" message: node:cluster has already
        // stopped handing it connections, and any it handed before travel ahead of this answer.
        if (rec.worker.isConnected()) rec.worker.send({ prodserver: 1, type: 'farewell' } satisfies PrimaryMessage)
        return
      case 'handoff':
        return // the connection it carries is ConnectionHandoff's
      case 'listeners-closed':
        this.stopBarrier.report(rec.worker)
        return
      case 'stop-accepting':
        void this.stopAccepting().then(() => {
          if (rec.worker.isConnected()) rec.worker.send({ prodserver: 1, type: 'accepting-stopped' } satisfies PrimaryMessage)
        })
        return
    }
    this.wake()
  }

  private workerReady (rec: WorkerRecord, addresses: string[]): void {
    if (rec.state === 'booting') rec.state = 'ready'
    rec.readyAt = Date.now()
    this.memory.sample(rec)
    if (this.addresses.length === 0) this.addresses = addresses
    this.log.info({ worker: rec.pid, bootMs: rec.readyAt - rec.startedAt, addresses }, 'worker ready')
    if (this.phase === 'starting' && [...this.workers.values()].filter((w) => w.state === 'ready').length >= this.target) {
      this.phase = 'running'
      this.log.info({ workers: this.target, ms: Date.now() - this.launchedAt }, 'all workers ready')
      this.onStarted?.()
    }
  }

  /** A worker exited: record what it means; the loop does the rest. */
  private reap (rec: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(rec.worker.id)
    this.stopBarrier.gone(rec.worker)
    if (rec.killTimer !== undefined) clearTimeout(rec.killTimer)
    const queued = this.retireQueue.findIndex((e) => e.rec === rec)
    if (queued !== -1) this.retireQueue.splice(queued, 1)
    const exit = { worker: rec.pid, code, signal, uptimeMs: Date.now() - rec.startedAt }
    this.wake()
    this.metrics?.gone(rec.pid)
    const cause = exitCause({ signal, killedByUs: rec.timedOut === true, heap: rec.heap, rssMb: this.memory.reading(rec.pid)?.rssMb, budgetMb: this.plan.memory.budgetMb })
    this.memory.forget(rec.pid)
    const restart = restartReason(rec, this.phase, cause?.memory === true)
    if (restart !== undefined) {
      this.metrics?.workerExited(restart)
      this.restarts[restart]++
    }

    if (this.phase === 'stopping' || this.phase === 'halted' || rec.state === 'draining') {
      this.log.info({ ...exit, reason: rec.drainReason, action: 'none' }, 'worker exited')
      if (this.rotation?.old === rec) this.rotationDone(this.rotation)
      const m = this.memoryRotationOf(rec, 'old')
      if (m !== undefined) this.rotationDone(m)
      return
    }
    if (rec.readyAt === undefined) {
      if (this.rotation?.fresh === rec) return this.abortRotation(this.rotation, exit)
      const m = this.memoryRotationOf(rec, 'fresh')
      if (m !== undefined) return this.abortRotation(m, exit)
      // Gunicorn's HaltServer: failing before ready at start-up (or with nobody serving) is a bad
      // deploy, not bad luck; exit so the orchestrator sees it instead of fork-looping (pitfall 9).
      const anyReady = [...this.workers.values()].some((w) => w.readyAt !== undefined)
      if (this.phase === 'starting' || !anyReady) return this.halt(rec, exit)
    }
    const m = this.memoryRotationOf(rec, 'old')
    if (m !== undefined) this.memoryRotations.delete(m) // its replacement simply takes its place
    else if (this.rotation?.old === rec) this.rotation = undefined
    else if (restart !== undefined) this.orphanedRestarts.push(withRestart(rec.restarts, restart))
    const delay = this.backoff.next(exit.uptimeMs)
    this.spawnNotBefore = Date.now() + delay
    this.nextSpawnReason = 'respawn'
    // Out of memory is a cause (counted as reason `memory`); anything else memory can only hint at.
    const why = cause?.memory === true ? { reason: 'memory', cause: cause.text } : { hint: cause?.text }
    this.log.error({ ...exit, timedOut: rec.timedOut === true, ...why, action: 'respawn', respawnInMs: delay }, 'worker exited')
  }

  private rotationDone (r: Rotation): void {
    this.forgetRotation(r)
    this.log.info({ reason: r.reason, old: r.old.pid, fresh: r.fresh.pid }, 'worker replaced')
    if (r.reason === 'reload' && !this.retireQueue.some((e) => e.reason === 'reload')) {
      this.log.info('reload done')
      this.settleReload({ ok: true, workers: this.servingPids() })
    }
  }

  /** The replacement failed to boot: keep the old workers serving (better than Gunicorn, which halts). */
  private abortRotation (r: Rotation, exit: Record<string, unknown>): void {
    this.forgetRotation(r)
    const error = r.fresh.bootError?.message ?? describeExit(exit)
    if (r.reason === 'reload') {
      for (let i = this.retireQueue.length - 1; i >= 0; i--) if (this.retireQueue[i].reason === 'reload') this.retireQueue.splice(i, 1)
      this.settleReload({ ok: false, error: `reload aborted: the new worker failed to boot (${error}); the old workers keep serving` })
    }
    this.log.error({ ...exit, reason: r.reason, error, kept: r.old.pid, action: 'keep old workers' }, `${r.reason} aborted`)
  }

  private forgetRotation (r: Rotation): void {
    if (this.rotation === r) this.rotation = undefined
    this.memoryRotations.delete(r)
  }

  private halt (rec: WorkerRecord, exit: Record<string, unknown>): void {
    this.phase = 'halted'
    this.retireQueue.length = 0
    this.rotation = undefined
    this.memoryRotations.clear()
    const error = rec.bootError?.message ?? (rec.timedOut === true ? 'worker timeout before it was ready' : describeExit(exit))
    this.log.fatal({ ...exit, error, action: 'halt' }, 'worker exited before it was ready: halting')
    process.stderr.write(`prodserver: worker ${rec.pid} failed to boot: ${error}\n`)
    if (rec.bootError?.stack !== undefined) process.stderr.write(`${rec.bootError.stack}\n`)
    for (const other of this.workers.values()) {
      if (other.state === 'ready') this.drain(other, 'halt')
      else other.worker.process.kill('SIGKILL')
    }
  }

  /**
   * One secret for every worker, for the primary's lifetime (so a reload does not log users out),
   * when none is configured and this is not production (where the sessions plugin refuses to boot
   * without one).
   */
  /**
   * The workers' default session directory, when another local user has taken it: one private
   * directory for all of them, for the primary's lifetime (sessions/stores/file/default-dir.ts).
   */
  private adoptSessionDir (): void {
    const configured = [this.env.PRODSERVER_SESSION_DIR, this.env.SESSION_DIR, this.workerEnv.PRODSERVER_SESSION_DIR, this.env[WORKER_ENV.sessionDir]]
    if (configured.some((s) => s !== undefined && s !== '')) return
    const taken = workersDefaultDir(defaultSessionDir())
    if (taken === undefined) return
    this.workerEnv[WORKER_ENV.sessionDir] = taken.dir
    this.log.warn(taken.warning)
  }

  private adoptSessionSecret (): void {
    const configured = [this.env.PRODSERVER_SESSION_SECRET, this.env.SESSION_SECRET, this.workerEnv.PRODSERVER_SESSION_SECRET, this.env[WORKER_ENV.sessionSecret]]
    if (configured.some((s) => s !== undefined && s !== '') || this.env.NODE_ENV === 'production') return
    this.workerEnv[WORKER_ENV.sessionSecret] = randomBytes(32).toString('base64url')
    this.log.warn('SESSION_SECRET is not set: generated a random session secret shared by all workers until this primary exits; sessions will not survive a restart (set SESSION_SECRET; required when NODE_ENV=production)')
  }
}

/** Why a worker that exited gets replaced (metrics); undefined when it is not replaced (shutdown). */
function restartReason (rec: WorkerRecord, phase: string, outOfMemory: boolean): RestartReason | undefined {
  if (phase === 'stopping' || phase === 'halted') return undefined
  if (rec.state === 'draining') {
    switch (rec.drainReason) {
      case 'reload': return 'reload'
      case 'recycle': return 'recycle'
      case 'memory': return 'memory'
      case 'scale-down': return 'scale'
      default: return undefined
    }
  }
  if (rec.timedOut === true) return 'timeout'
  return outOfMemory ? 'memory' : 'crash'
}


function withRestart (restarts: Partial<RestartCounts>, reason: RestartReason): Partial<RestartCounts> {
  return { ...restarts, [reason]: (restarts[reason] ?? 0) + 1 }
}

function describeExit (exit: Record<string, unknown>): string {
  return exit.signal != null ? `killed by ${String(exit.signal)} before it was ready` : `exited with code ${String(exit.code)} before it was ready`
}

/** process.execArgv with our --max-old-space-size replacing any earlier one. */
export function withHeapLimit (execArgv: readonly string[], heapMb: number): string[] {
  const rest = execArgv.filter((a, i) => !/^--max[-_]old[-_]space[-_]size(=|$)/.test(a) && !/^--max[-_]old[-_]space[-_]size$/.test(execArgv[i - 1] ?? ''))
  return heapMb > 0 ? [...rest, `--max-old-space-size=${Math.floor(heapMb)}`] : rest
}
