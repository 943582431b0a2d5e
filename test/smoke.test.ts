import t from 'tap'
import { resolveKnobs } from '../lib/config/resolve'

t.test('a bare channel timeout is read in seconds, as Waitress does', async (t) => {
  const r = resolveKnobs({ env: { WAITRESS_CHANNEL_TIMEOUT: '60' } })
  t.equal(r.values['channel-timeout'], 60_000)
  t.equal(r.sources['channel-timeout'], 'env WAITRESS_CHANNEL_TIMEOUT')
})
