/**
 * Liveness and readiness, answered in the tuned server's request listener before Fastify sees the
 * request: a probe never reaches the app's hooks (an auth hook must not 401 the load balancer),
 * cannot clash with the app's routes, is not logged per request, and does not count towards
 * max-requests or the request metrics.
 *
 * - liveness (health-path): 200 whenever the event loop gets to run this code.
 * - readiness (ready-path): 503 from the moment a shutdown begins (see drain-delay) and while the
 *   session store's check() fails, when the app registered the sessions plugin; otherwise 200.
 */
import type http from 'node:http'
import type { OpsPlan } from '../plan/types'

export interface StoreProbe {
  kind: string
  check (): Promise<{ ok: boolean, error?: string }>
}

export interface ReadinessState {
  /** True from the start of a drain (including the drain-delay before it). */
  unready (): boolean
  /** The sessions plugin's backend, once the app registered it. */
  store (): StoreProbe | undefined
}

/** A store check slower than this is a failed check: a probe must answer before the balancer gives up. */
const CHECK_TIMEOUT_MS = 2000

/** Answers the request and returns true when it is a probe; returns false for everything else. */
export type ProbeResponder = (req: http.IncomingMessage, res: http.ServerResponse) => boolean

export function buildProbeResponder (ops: OpsPlan, state: ReadinessState): ProbeResponder | undefined {
  const { healthPath, readyPath } = ops
  if (healthPath === undefined && readyPath === undefined) return undefined
  const check = sharedCheck(state)

  return (req, res) => {
    const url = req.url
    if (url === undefined) return false
    const isHealth = healthPath !== undefined && matches(url, healthPath)
    const isReady = !isHealth && readyPath !== undefined && matches(url, readyPath)
    if (!isHealth && !isReady) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    if (isHealth) {
      send(res, 200, { live: true })
      return true
    }
    if (state.unready()) {
      send(res, 503, { ready: false, reason: 'draining' })
      return true
    }
    check().then((reason) => {
      if (reason === undefined) send(res, 200, { ready: true })
      else send(res, 503, { ready: false, reason })
    }, () => send(res, 503, { ready: false, reason: 'readiness check failed' }))
    return true
  }
}

/** The exact path, or the path followed by a query string. */
function matches (url: string, path: string): boolean {
  return url === path || (url.length > path.length && url.charCodeAt(path.length) === 63 /* ? */ && url.startsWith(path))
}

/** Concurrent probes share one store check (several balancers probing must not multiply Redis calls). */
function sharedCheck (state: ReadinessState): () => Promise<string | undefined> {
  let inflight: Promise<string | undefined> | undefined
  return () => {
    const store = state.store()
    if (store === undefined) return Promise.resolve(undefined)
    inflight ??= runCheck(store).finally(() => { inflight = undefined })
    return inflight
  }
}

async function runCheck (store: StoreProbe): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<{ ok: boolean, error?: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `no answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS)
  })
  try {
    const result = await Promise.race([store.check(), timeout])
    return result.ok ? undefined : `session store (${store.kind}) unavailable: ${result.error ?? 'check failed'}`
  } catch (err) {
    return `session store (${store.kind}) unavailable: ${err instanceof Error ? err.message : String(err)}`
  } finally {
    clearTimeout(timer)
  }
}

function send (res: http.ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent || res.destroyed) return
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store'
  })
  res.end(res.req?.method === 'HEAD' ? undefined : text)
}
