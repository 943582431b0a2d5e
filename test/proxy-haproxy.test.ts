/**
 * Behind HAProxy (HTTP mode, its default server-side connection reuse), SIGHUP reloads and
 * max-requests recycling under POST and GET load lose nothing: no request broken on the server
 * side (termination state S*), none retried, every one answered 200.
 */
import t from 'tap'
import { startHaproxy } from './helpers/haproxy'
import { serveBehindProxy, throughProxy, nothingLost, haproxySawNoFailure, replaced, reload, recycles } from './helpers/proxy-load'

t.test('a SIGHUP reload under POST and GET load loses nothing', async (t) => {
  const { p, port } = await serveBehindProxy(t, ['--workers', '2'])
  const haproxy = await startHaproxy(t, { upstreams: [port] })
  const r = await throughProxy(haproxy.url, () => reload(p, 1))
  t.equal(replaced(p, 'reload'), 2, 'the reload replaced both workers')
  nothingLost(t, r)
  haproxySawNoFailure(t, haproxy)
})

t.test('max-requests recycling under POST and GET load loses nothing', async (t) => {
  const { p, port } = await serveBehindProxy(t, ['--workers', '2', '--max-requests', '800', '--max-requests-jitter', '200'])
  const haproxy = await startHaproxy(t, { upstreams: [port] })
  const r = await throughProxy(haproxy.url, () => recycles(p, 2))
  nothingLost(t, r)
  haproxySawNoFailure(t, haproxy)
})
