/**
 * Stopping through npm: `npm start` and `npx prodserver serve …` run the server under `sh -c`,
 * which passes no signal on; SIGTERM to npm (what `docker stop` sends to CMD ["npm", "start"],
 * what a process manager sends to the process it started) must still drain the server and leave
 * no process behind — it used to keep running, re-parented to PID 1.
 */
import t from 'tap'
import { freePort, get, eventually } from './helpers/process'
import { npmProject, run } from './helpers/npm-project'
import { npmAsPid1Warning } from '../lib/launch/orphan'
import { parseProcStat, type ProcessEntry } from '../lib/system/parent-process'

type Tap = tap.Test

const flags = (port: number, extra: readonly string[]): string[] => ['-a', '127.0.0.1', '-p', String(port), '--graceful-timeout', '10s', '-l', 'info', ...extra]

function project (t: Tap, port: number, extra: readonly string[]): string {
  return npmProject(t, `prodserver serve app.js ${flags(port, extra).join(' ')}`)
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

for (const [how, command, extra] of [
  ['npm start (single mode)', 'npm', []],
  ['npx prodserver serve … (cluster mode)', 'npx', ['--workers', '2']]
] as const) {
  t.test(`SIGTERM to ${how}: the server drains the request in flight and exits`, async (t) => {
    const port = await freePort()
    const dir = project(t, port, extra)
    // npm start takes the flags from the script, npx from its own argv.
    const argv = command === 'npm' ? ['start'] : ['prodserver', 'serve', 'app.js', ...flags(port, extra)]
    const r = run(t, command, argv, dir)
    const started = await r.line(extra.length === 0 ? 'listening' : 'all workers ready')
    const server = started.pid as number
    t.not(server, r.child.pid, 'the server is not the npm process')

    const slow = get(port, '/slow')
    await eventually(() => r.lines.find((l) => l.msg === 'incoming request' && (l.req as { url?: string })?.url === '/slow'), 15_000, 'the request reached the app', 20)
    process.kill(r.child.pid as number, 'SIGTERM')
    const reply = await slow
    t.equal(reply.status, 200, 'the request in flight is answered')
    await r.line('stopped')
    t.ok(r.lines.some((l) => l.msg === 'the process that started us exited (npm or npx was stopped): shutting down' && l.pid === server), 'the server noticed npm\'s shell was gone')
    // The primary and every worker it had (workers hold no listening socket: "nothing listens"
    // below would not see one left behind).
    const pids = [server, ...r.lines.filter((l) => l.msg === 'worker ready').map((l) => l.worker as number)]
    t.equal(pids.length, extra.length === 0 ? 1 : 3)
    await eventually(() => pids.some(alive) ? undefined : true, 15_000, `the server processes ${pids.join(', ')} are gone`)
    t.pass(`server processes ${pids.join(', ')} exited`)
    await t.rejects(get(port, '/slow'), 'nothing listens any more')
    t.notOk(r.lines.some((l) => /npm runs as PID 1/.test(String(l.msg))), 'no PID 1 warning: npm is not PID 1 here')
  })
}

// npm as a container's PID 1 cannot be helped from inside (its exit kills the container): the
// server says so at start-up. The decision is pure; /proc is read through `read`.
t.test('npm as PID 1 through sh -c: a warning that says how to start instead; nothing otherwise', async (t) => {
  t.same(parseProcStat('4242 (sh) S 1 4242 4242 0 -1 4194560'), { pid: 4242, comm: 'sh', ppid: 1 })
  t.same(parseProcStat('77 (node (x) y) S 12 77'), { pid: 77, comm: 'node (x) y', ppid: 12 })
  const shellUnderPid1 = (): ProcessEntry => ({ pid: 7, comm: 'sh', ppid: 1 })
  t.match(npmAsPid1Warning({ npm_lifecycle_event: 'start' }, 7, shellUnderPid1), /^npm runs as PID 1 and started us through "sh -c", which passes no signal on: .*"exec prodserver serve …"/)
  t.equal(npmAsPid1Warning({}, 7, shellUnderPid1), undefined, 'not started by npm')
  t.equal(npmAsPid1Warning({ npm_lifecycle_event: 'start' }, 7, () => ({ pid: 7, comm: 'sh', ppid: 6 })), undefined, 'npm is not PID 1')
  t.equal(npmAsPid1Warning({ npm_lifecycle_event: 'start' }, 1, () => ({ pid: 1, comm: 'npm', ppid: 0 })), undefined, 'npm execs us itself (exec in the script, or bash): signals reach us')
})
