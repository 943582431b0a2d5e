/**
 * Behind nginx with upstream keep-alive, a SIGTERM to one of two instances under POST and GET load
 * loses nothing. The stopping instance has no worker left to take its connections: it stops
 * accepting first (nginx's new connections are refused, and retried on the other instance since
 * nothing was sent), then answers the requests on its pooled connections with `Connection: close`
 * and closes the ones left idle — and those do not hold the stop up.
 *
 * The load overflows nginx's pool (64 clients, `keepalive 32`), so nginx opens new connections to
 * the stopping instance all the time: the connections the kernel or node:cluster's primary had
 * accepted when the listener closed are served, not reset. Before, they were reset (15 POSTs
 * answered 502 on one cluster stop of two; 6 in a single process off the CPU when the signal came).
 */
import t from 'tap'
import { startNginx } from './helpers/nginx'
import { serveBehindProxy, throughProxy, nothingLost, nginxSawNoFailure } from './helpers/proxy-load'

for (const mode of ['cluster', 'single process'] as const) {
  t.test(`two instances (${mode}): SIGTERM to one under POST and GET load loses nothing`, async (t) => {
    const flags = mode === 'cluster' ? ['--workers', '2'] : []
    const a = await serveBehindProxy(t, flags)
    const b = await serveBehindProxy(t, flags)
    const nginx = await startNginx(t, { upstreams: [a.port, b.port] })
    let stopMs = 0
    const r = await throughProxy(nginx.url, async () => {
      const began = Date.now()
      a.p.signal('SIGTERM')
      const exit = await a.p.waitExit(30_000)
      stopMs = Date.now() - began
      t.equal(exit.code, 0, 'the stopped instance exits cleanly')
    })
    t.ok(stopMs < 5000, `the stop took ${stopMs} ms (pooled idle connections do not hold it up; graceful-timeout 10 s)`)
    nothingLost(t, r)
    // A refused connect is retried on the other instance (nothing was sent): a 200 after a retry.
    nginxSawNoFailure(t, nginx, { retriesAllowed: true })
  })
}
