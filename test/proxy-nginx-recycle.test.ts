/**
 * Behind nginx with upstream keep-alive, max-requests recycling and a SIGTTOU scale-down under POST
 * and GET load lose nothing: the retiring worker's idle pooled connections move to the workers
 * that stay, with any request nginx already sent on them.
 */
import t from 'tap'
import { startNginx } from './helpers/nginx'
import { serveBehindProxy, throughProxy, nothingLost, nginxSawNoFailure, recycles, sleep } from './helpers/proxy-load'

t.test('max-requests recycling under POST and GET load loses nothing', async (t) => {
  const { p, port } = await serveBehindProxy(t, ['--workers', '2', '--max-requests', '800', '--max-requests-jitter', '200'])
  const nginx = await startNginx(t, { upstreams: [port] })
  const r = await throughProxy(nginx.url, () => recycles(p, 2))
  nothingLost(t, r)
  nginxSawNoFailure(t, nginx)
})

t.test('SIGTTOU scale-down under POST and GET load loses nothing', async (t) => {
  const { p, port } = await serveBehindProxy(t, ['--workers', '3'])
  const nginx = await startNginx(t, { upstreams: [port] })
  const r = await throughProxy(nginx.url, async () => {
    p.signal('SIGTTOU')
    await p.waitLine((l) => l.msg === 'worker exited' && l.reason === 'scale-down', 30_000)
    await sleep(500)
    p.signal('SIGTTOU')
    await p.waitLines((l) => l.msg === 'worker exited' && l.reason === 'scale-down', 2, 30_000)
  })
  nothingLost(t, r)
  nginxSawNoFailure(t, nginx)
})
