/**
 * Big saves are refused with 503 (Retry-After) while the process's heap is near its cap, instead of
 * the worker aborting with "JavaScript heap out of memory" (lib/sessions/heap-pressure.ts); small
 * saves go ahead, and big ones work again once the heap is lower. A real server with a 64 MB heap
 * cap whose heap the test fills; and the pure reading (share of the cap, refresh interval).
 */
import t from 'tap'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { HeapPressure, NEAR_CAP_SHARE } from '../lib/sessions/heap-pressure'

t.test('the reading: near the cap above NEAR_CAP_SHARE of the old-space cap, refreshed at most every 100 ms', async (t) => {
  let usedMb = 100
  let now = 0
  const pressure = new HeapPressure(() => ({ usedMb, limitMb: 150 }), () => now)
  t.equal(pressure.nearCap(), null, `${100 / 150} of the cap: not near`)
  usedMb = 150 * NEAR_CAP_SHARE + 1
  now = 50
  t.equal(pressure.nearCap(), null, 'a reading is kept for 100 ms')
  now = 100
  t.match(pressure.nearCap(), { usedMb, limitMb: 150 }, 'then read again: near')
})

t.test('a real server with a 128 MB heap: big saves 503 while the heap is near its cap, small saves go ahead, big ones work again after', async (t) => {
  const child = spawn(process.execPath, ['--max-old-space-size=128', '--expose-gc', path.join(__dirname, 'fixtures', 'heap-pressure-app.js')], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => { err += String(d) })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += String(d)
      const m = /LISTENING (\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)))
  })
  const base = `http://127.0.0.1:${port}`
  const login = await fetch(`${base}/login`, { method: 'POST' })
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]
  t.equal(login.status, 200, 'logged in')
  const post = async (p: string, method = 'POST', as = cookie): Promise<Response> => await fetch(base + p, { method, headers: { cookie: as } })
  const other = await fetch(`${base}/login`, { method: 'POST' })
  const otherCookie = (other.headers.get('set-cookie') ?? '').split(';')[0]

  t.equal((await post('/grow?kb=100')).status, 200, 'a 100 KB save with room on the heap: saved')
  const filled = await (await post('/ballast?share=0.88')).json() as { usedMb: number, limitMb: number }
  t.ok(filled.usedMb / filled.limitMb >= 0.88 && filled.limitMb === 128, `heap filled to ${filled.usedMb.toFixed(0)} of ${filled.limitMb} MB`)
  // The reading is at most 100 ms old: the first save after the fill may still see the old one.
  // Each save a different size: an unchanged session is not saved at all.
  let kb = 101
  let big = await post(`/grow?kb=${kb++}`)
  for (let i = 0; i < 20 && big.status === 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    big = await post(`/grow?kb=${kb++}`)
  }
  t.equal(big.status, 503, 'a 100 KB save near the cap: 503')
  t.equal(big.headers.get('retry-after'), '1', 'with Retry-After')
  t.match(await big.json(), { code: 'FST_SESSION_MEMORY_PRESSURE' })
  const small = await post('/note', 'POST', otherCookie)
  t.equal(small.status, 200, `another user's small save near the cap: saved (${small.status === 200 ? '' : await small.text()})`)
  // The log line travels through the child's stdout pipe: wait for it (bounded), then check it.
  const why = /session not saved: this process's heap is at \d+% of its cap \(\d+ of 128 MB\); saves of sessions of 64 KB or more fail with 503 until it is lower/
  for (const until = Date.now() + 10_000; !why.test(out) && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(out, why, 'the log says why')

  await post('/ballast', 'DELETE')
  let again = await post(`/grow?kb=${kb++}`)
  for (let i = 0; i < 20 && again.status === 503; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    again = await post(`/grow?kb=${kb++}`)
  }
  t.equal(again.status, 200, 'the heap is lower: big saves work again')
  t.notMatch(err + out, /heap out of memory/, 'the server never ran out of heap')
  t.equal(child.exitCode, null, 'and is still running')
})
