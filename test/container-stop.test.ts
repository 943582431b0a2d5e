/**
 * The README's container start commands, run as a container runs them: the command is PID 1 of
 * its own PID namespace (`unshare --pid --fork --mount-proc`, what `docker run` does), and
 * `docker stop` is SIGTERM to that PID 1 from outside; when PID 1 exits the kernel kills
 * everything left in the namespace. The Dockerfile's CMD (prodserver itself) and its npm variant
 * ("start": "exec prodserver serve …") must drain the request in flight; npm as PID 1 with a
 * shell in between cannot drain, and the server says so at start-up with the fix.
 * (test/npm-stop.test.ts: npm start / npx outside a container.)
 */
import t from 'tap'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { freePort, get, eventually } from './helpers/process'
import { npmProject, run } from './helpers/npm-project'

// Fails, never skips, where PID namespaces are not allowed: what is tested is PID 1 semantics.
const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8' })
if (probe.status !== 0) throw new Error(`this test needs unshare --pid --fork --mount-proc (util-linux, root): ${probe.error?.message ?? probe.stderr}`)

const flags = (port: number): string => `-a 127.0.0.1 -p ${port} --graceful-timeout 10s -l info`

/** The pid, outside the namespace, of the namespace's PID 1 (unshare's only child). */
const initPid = (unshare: number) => eventually(() => {
  const children = fs.readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim()
  return children === '' ? undefined : Number(children.split(' ')[0])
}, 10_000, 'the namespace\'s PID 1', 20)

for (const [how, command, startScript] of [
  ['CMD ["node_modules/.bin/prodserver", "serve", "app.js", "--cluster"]', ['node_modules/.bin/prodserver', 'serve', 'app.js', '--cluster', '--workers', '2'], ''],
  ['CMD ["npm", "start"] with "start": "exec prodserver serve app.js --cluster"', ['npm', 'start'], 'exec prodserver serve app.js --cluster --workers 2']
] as const) {
  t.test(`${how} as PID 1: docker stop (SIGTERM) drains the request in flight, exit 0`, async (t) => {
    const port = await freePort()
    const dir = npmProject(t, `${startScript} ${flags(port)}`)
    const r = run(t, 'unshare', ['--pid', '--fork', '--mount-proc', ...command, ...(startScript === '' ? flags(port).split(' ') : [])], dir)
    await r.line('all workers ready')
    const init = await initPid(r.child.pid as number)
    const slow = get(port, '/slow')
    await eventually(() => r.lines.find((l) => l.msg === 'incoming request'), 15_000, 'the request reached the app', 20)
    process.kill(init, 'SIGTERM')
    t.equal((await slow).status, 200, 'the request in flight is answered')
    t.equal(await r.exit, 0, 'PID 1 exits 0: the container stops cleanly')
    t.ok(r.lines.some((l) => l.msg === 'stopped'), 'after a graceful stop')
    t.notOk(r.lines.some((l) => /npm runs as PID 1/.test(String(l.msg))), 'no warning: signals reach the server')
  })
}

t.test('CMD ["npm", "start"] with "start": "prodserver serve app.js" (a shell in between): a warning at start-up says how to start instead', async (t) => {
  const port = await freePort()
  const dir = npmProject(t, `prodserver serve app.js ${flags(port)}`)
  const r = run(t, 'unshare', ['--pid', '--fork', '--mount-proc', 'npm', 'start'], dir)
  const warning = await r.line(/npm runs as PID 1/)
  t.equal(warning.level, 40, 'a warning')
  t.match(warning.msg, /"exec prodserver serve …", or start prodserver directly \(CMD \["node_modules\/\.bin\/prodserver", "serve", …\]\)/)
  await r.line('listening')
})
