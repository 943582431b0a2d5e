/**
 * A steady load on a session store while a test breaks its backend (failover, kill): `loops`
 * loops, each a set + get of its own session every 20 ms, counting successes, 503s
 * (StoreUnavailableError) and anything else, and the slowest set + get.
 *
 *   const load = steadyLoad(store, 4)
 *   … kill the master …
 *   await load.stop()
 *   t.same(load.counts.other, [])
 */
import type { SessionRecordStore } from '../../lib/sessions/stores/types'
import { StoreUnavailableError } from '../../lib/sessions/errors'
import { newSessionId } from './store-contract'

export interface LoadCounts { ok: number, unavailable: number, other: string[], slowestMs: number }

export function steadyLoad (store: SessionRecordStore, loops: number): { counts: LoadCounts, stop: () => Promise<void> } {
  const counts: LoadCounts = { ok: 0, unavailable: 0, other: [], slowestMs: 0 }
  let running = true
  const loop = async (): Promise<void> => {
    const id = newSessionId()
    while (running) {
      const started = performance.now()
      try {
        await store.set(id, '{"n":1}', 60_000)
        await store.get(id)
        counts.ok++
      } catch (err) {
        if (err instanceof StoreUnavailableError && err.statusCode === 503) counts.unavailable++
        else counts.other.push(String(err))
      }
      counts.slowestMs = Math.max(counts.slowestMs, performance.now() - started)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const running$ = Array.from({ length: loops }, async () => await loop())
  return { counts, stop: async () => { running = false; await Promise.all(running$) } }
}
