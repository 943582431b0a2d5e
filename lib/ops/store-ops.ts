/**
 * The seam between the session adapter and the metrics: the adapter asks once, when the plugin is
 * registered, whether anyone observes store operations; when nobody does (metrics off) it times
 * nothing at all.
 *
 * The observer sits on a global symbol rather than in this module's scope so that an app which
 * resolves its own copy of fastify-prodserver (a nested node_modules) still reports to the server
 * that runs it.
 */
export type StoreOp = 'get' | 'set' | 'touch' | 'destroy'

export type StoreOpObserver = (store: string, op: StoreOp, seconds: number, ok: boolean) => void

const kObserver = Symbol.for('fastify-prodserver.storeOpObserver')
type Holder = { [kObserver]?: StoreOpObserver }

export function observeStoreOps (observer: StoreOpObserver | undefined): void {
  (globalThis as Holder)[kObserver] = observer
}

/** Wraps an operation's promise to time it, or undefined when nobody observes. */
export type StoreOpTimer = <T>(op: StoreOp, operation: Promise<T>) => Promise<T>

export function storeOpTimer (store: string): StoreOpTimer | undefined {
  const observer = (globalThis as Holder)[kObserver]
  if (observer === undefined) return undefined
  return (op, operation) => {
    const began = performance.now()
    operation.then(
      () => observer(store, op, (performance.now() - began) / 1000, true),
      () => observer(store, op, (performance.now() - began) / 1000, false)
    )
    return operation
  }
}
