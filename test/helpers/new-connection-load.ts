/**
 * New-connection load with autocannon: every request on a fresh connection (`Connection: close`:
 * the server closes after each answer and autocannon reconnects), so a cluster primary is handing
 * connections to its workers all the time. autocannon counts a request that got neither an answer nor an error within
 * `timeoutS` in `timeouts` (wrk 4.1 does not: it never reports a request the server never answers).
 *
 *   const load = startNewConnectionLoad({ url, connections: 8, timeoutS: 4 })
 *   ... kill a worker ...
 *   const r = await load.stop()   // { requests, errors, timeouts, non2xx }
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon')

export interface LoadResult { requests: number, errors: number, timeouts: number, non2xx: number }

export interface Load { stop (): Promise<LoadResult> }

export function startNewConnectionLoad (o: { url: string, connections?: number, timeoutS: number }): Load {
  const instance = autocannon({
    url: o.url,
    connections: o.connections ?? 8,
    duration: 600,
    timeout: o.timeoutS,
    headers: { connection: 'close' }
  })
  const done = new Promise<LoadResult>((resolve, reject) => {
    instance.on('done', (r: { requests: { total: number }, errors: number, timeouts: number, non2xx: number }) => {
      resolve({ requests: r.requests.total, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx })
    })
    instance.on('error', reject)
  })
  return {
    stop: () => {
      instance.stop()
      return done
    }
  }
}
