// The Redis store's circuit breaker, with its clock injected (pure logic; the real-server
// behaviour under kill/freeze is in store-redis-faults.test.ts).
import t from 'tap'
import { Breaker } from '../lib/sessions/stores/redis/breaker'

function clock (start = 1000): { now: () => number, advance: (ms: number) => void } {
  let current = start
  return { now: () => current, advance: (ms) => { current += ms } }
}

t.test('an outage: the first failure opens, others fail fast, one probe after the cool-down closes it', async (t) => {
  const c = clock()
  const b = new Breaker(1000, c.now)
  const started = b.time()
  c.advance(500)
  t.equal(b.failure(started), true, 'the failure opens the circuit')
  t.equal(b.admit(), false, 'operations are refused at once')
  c.advance(1000)
  t.equal(b.admit(), true, 'after the cool-down one probe is let through')
  t.equal(b.admit(), false, 'and only one')
  t.equal(b.success(), true, 'its success closes the circuit')
  t.equal(b.current, 'closed')
})

t.test('one slow command while Redis answers others does not fail everybody fast', async (t) => {
  const c = clock()
  const b = new Breaker(1000, c.now)
  const slowStarted = b.time()
  c.advance(100)
  b.success() // another operation, sent after the slow one, is answered
  c.advance(900)
  t.equal(b.failure(slowStarted), false, 'the slow one times out: circuit stays closed')
  t.equal(b.current, 'closed')
  t.equal(b.admit(), true, 'the next operations still run')
  const later = b.time()
  c.advance(1000)
  t.equal(b.failure(later), true, 'a failure with no answer since it was sent opens it')
})

t.test('a failed probe re-opens the circuit for another cool-down', async (t) => {
  const c = clock()
  const b = new Breaker(1000, c.now)
  b.failure(b.time())
  c.advance(1000)
  t.equal(b.admit(), true, 'probe admitted')
  const probeStarted = b.time()
  c.advance(400)
  t.equal(b.failure(probeStarted), false, 'returns false: it was not closed')
  t.equal(b.current, 'open', 'open again')
  t.equal(b.admit(), false, 'refused again')
  c.advance(1000)
  t.equal(b.admit(), true, 'until the next cool-down has passed')
})
