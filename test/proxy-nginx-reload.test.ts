/**
 * Behind nginx with upstream keep-alive (`keepalive 32`, HTTP/1.1, `Connection ""`), SIGHUP
 * reloads under POST and GET load lose nothing (recycling and scale-down: proxy-nginx-recycle;
 * stop: proxy-nginx-stop). A worker that closed a pooled connection at the moment nginx reused it
 * would show as a 502 (nginx does not retry a POST), a silent retry of a GET, and a
 * `recv() failed (104)` line in nginx's error log.
 */
import t from 'tap'
import { startNginx } from './helpers/nginx'
import { serveBehindProxy, throughProxy, nothingLost, nginxSawNoFailure, replaced, reload } from './helpers/proxy-load'

t.test('SIGHUP reloads under POST and GET load lose nothing', async (t) => {
  const { p, port } = await serveBehindProxy(t, ['--workers', '2'])
  const nginx = await startNginx(t, { upstreams: [port] })
  const r = await throughProxy(nginx.url, () => reload(p, 2))
  t.equal(replaced(p, 'reload'), 4, 'two reloads replaced four workers')
  nothingLost(t, r)
  nginxSawNoFailure(t, nginx)
})
