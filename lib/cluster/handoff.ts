/**
 * Connections in transit between the primary and its workers: none is ever stranded.
 *
 * node:cluster's round-robin primary accepts each connection and hands it to a worker with
 * `{cmd:'NODE_CLUSTER', act:'newconn', key, seq}` plus the socket's handle; it closes its own copy
 * only when the worker answers `{ack: seq, accepted}` (lib/internal/cluster/round_robin_handle.js,
 * utils.js sendHelper — the same shape in Node 20, 22 and 24). If the worker dies before it
 * answers, nobody ever closes that copy: the client waits forever (a SIGKILL, a heartbeat kill, a
 * V8 out-of-memory abort under new-connection load strands one connection per listener). So we
 * watch the hand-offs on our own ChildProcess objects and, once a worker's IPC channel is gone
 * (nothing it sent can still arrive), give each unanswered connection to a live worker at once —
 * the bytes the client already sent are still unread in the kernel, so that worker serves the
 * request — or close it when no worker can take it.
 *
 * The same delivery re-homes the idle keep-alive connections a draining worker hands back during a
 * reload, recycle or scale-down (server/drain.ts): a connection moves with its unread bytes, so a
 * proxy that reuses it at that very moment loses nothing, where closing it would race the proxy.
 *
 * We deliver with node:cluster's own message, so the receiving worker's net.Server does all of its
 * usual bookkeeping, and a worker whose listener is already closed answers "not accepted" (then the
 * next live worker is tried). Our sequence numbers are strings: node:cluster's callback table is
 * keyed by its own integers, so our acknowledgements never trigger one of its callbacks.
 */
import type { Worker } from 'node:cluster'
import type { LauncherLog } from './log'
import { isProtocolMessage, type WorkerMessage } from './protocol'

/** A libuv TCP or pipe handle, as node:cluster passes it. */
interface NativeHandle {
  close (callback?: () => void): void
  getsockname?: (out: { address?: string, port?: number }) => number
}

interface InTransit {
  handle: NativeHandle
  key: string
  /** Workers already offered this connection (not offered again). */
  tried: Set<Worker>
}

interface ClusterMessage { cmd?: unknown, act?: unknown, key?: unknown, seq?: unknown, ack?: unknown, accepted?: unknown }

/** How long after a worker's exit its IPC channel may still be closing before we act anyway. */
const CHANNEL_CLOSE_GRACE_MS = 1000

export class ConnectionHandoff {
  /** Per worker: connections sent to it and not yet acknowledged, by sequence number. */
  private readonly inTransit = new Map<Worker, Map<number | string, InTransit>>()
  /** Local address of an accepted connection → node:cluster's key of the listener it came from. */
  private readonly listenerKeys = new Map<string, string>()
  private seq = 0
  private turn = 0
  /** Called once no connection is in transit (see whenNoneInTransit). */
  private settledWaiters: Array<() => void> = []

  constructor (
    /** Workers that may take a connection (ready, not draining). */
    private readonly liveWorkers: () => Worker[],
    private readonly log: LauncherLog
  ) {}

  /** Called once per forked worker, before it can receive anything. */
  watch (worker: Worker): void {
    const pending = new Map<number | string, InTransit>()
    this.inTransit.set(worker, pending)
    const proc = worker.process as typeof worker.process & { send: (...args: unknown[]) => boolean }
    const send = proc.send
    // node:cluster's round-robin hand-off goes through proc.send (utils.js sendHelper).
    proc.send = (...args: unknown[]): boolean => {
      const [message, handle] = args as [ClusterMessage | undefined, NativeHandle | undefined]
      if (isNewConnection(message) && typeof message.seq === 'number' && handle != null) {
        pending.set(message.seq, { handle, key: message.key as string, tried: new Set([worker]) })
        this.learnListener(handle, message.key as string)
      }
      return send.apply(proc, args)
    }
    proc.on('internalMessage', (m: ClusterMessage | null) => {
      if (m?.cmd !== 'NODE_CLUSTER' || m.ack === undefined) return
      const entry = pending.get(m.ack as number | string)
      if (entry === undefined) return
      pending.delete(m.ack as number | string)
      // node:cluster's own hand-off: its callback (run before this listener) closed or re-routed it.
      if (typeof m.ack === 'string') {
        if (m.accepted === true) entry.handle.close()
        else this.place(entry)
      }
      this.checkSettled()
    })
    proc.on('message', (m: unknown, handle?: NativeHandle) => {
      if (handle == null || !isProtocolMessage<WorkerMessage>(m) || m.type !== 'handoff') return
      const key = this.listenerKeys.get(localAddress(handle))
      if (key === undefined) {
        handle.close()
        this.log.warn({ worker: worker.process.pid }, 'handed-back connection closed: listener unknown')
        return
      }
      this.place({ handle, key, tried: new Set([worker]) })
    })
    // 'close' comes after both the exit and the end of the IPC channel: every acknowledgement the
    // worker managed to send has been read by then. The timer covers a channel held open by a
    // grandchild that inherited it.
    let settled = false
    const orphan = (): void => {
      if (settled) return
      settled = true
      this.inTransit.delete(worker)
      const stranded = [...pending.values()]
      pending.clear()
      if (stranded.length > 0) this.log.warn({ worker: worker.process.pid, connections: stranded.length }, 'worker died holding connections in hand-off: re-routing them')
      for (const entry of stranded) this.place(entry)
      this.checkSettled()
    }
    proc.once('close', orphan)
    proc.once('exit', () => setTimeout(orphan, CHANNEL_CLOSE_GRACE_MS).unref())
  }

  /**
   * Resolves true once no connection is on its way to any worker, false after timeoutMs. Once the
   * shared listeners are closed (shared-listeners.ts) nothing new is accepted, and node:cluster
   * queues a connection only while every worker has one in transit: so when none is in transit,
   * the primary holds no connection any more and the workers may close their listeners.
   */
  whenNoneInTransit (timeoutMs: number): Promise<boolean> {
    if (this.inTransitCount() === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(timer); resolve(true) }
      const timer = setTimeout(() => {
        this.settledWaiters = this.settledWaiters.filter((w) => w !== done)
        resolve(false)
      }, timeoutMs)
      this.settledWaiters.push(done)
    })
  }

  private inTransitCount (): number {
    let count = 0
    for (const pending of this.inTransit.values()) count += pending.size
    return count
  }

  private checkSettled (): void {
    if (this.settledWaiters.length === 0 || this.inTransitCount() > 0) return
    const waiters = this.settledWaiters
    this.settledWaiters = []
    for (const w of waiters) w()
  }

  /** Gives a connection to the next live worker not tried yet, or closes it. */
  private place (entry: InTransit): void {
    const candidates = this.liveWorkers().filter((w) => !entry.tried.has(w) && w.isConnected() && this.inTransit.has(w))
    if (candidates.length === 0) {
      entry.handle.close()
      this.log.warn({ tried: entry.tried.size }, 'connection closed: no live worker could take it')
      return
    }
    const worker = candidates[this.turn++ % candidates.length]
    entry.tried.add(worker)
    const seq = `prodserver:${this.seq++}`
    this.inTransit.get(worker)?.set(seq, entry)
    // Not through the wrapper's bookkeeping (string seq); a failed write leaves it in transit,
    // and that worker's 'close' re-routes it.
    worker.process.send({ cmd: 'NODE_CLUSTER', act: 'newconn', key: entry.key, seq }, entry.handle as never)
  }

  private learnListener (handle: NativeHandle, key: string): void {
    const address = localAddress(handle)
    if (this.listenerKeys.get(address) !== key) this.listenerKeys.set(address, key)
  }
}

function isNewConnection (m: ClusterMessage | undefined): m is ClusterMessage & { key: string } {
  return m?.cmd === 'NODE_CLUSTER' && m.act === 'newconn' && typeof m.key === 'string'
}

/** `address:port` of the server side of a TCP connection; unix sockets share one name. */
function localAddress (handle: NativeHandle): string {
  if (typeof handle.getsockname !== 'function') return 'unix'
  const out: { address?: string, port?: number } = {}
  handle.getsockname(out)
  return `${out.address ?? ''}:${out.port ?? ''}`
}
