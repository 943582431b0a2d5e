/**
 * A user's project that starts the server through npm: an app with a slow route, a package.json
 * whose start script is the caller's, and the prodserver binary linked as npm links it
 * (test/package-install.test.ts does the real install). `run` starts a command in its own process
 * group (killed at teardown) and collects the JSON lines it and its children print.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { eventually, ROOT, type LogLine } from './process'

interface Teardown { teardown (fn: () => unknown): void }

export function npmProject (t: Teardown, startScript: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prodserver-npm-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'app.js'), [
    'module.exports = async function (fastify) {',
    "  fastify.get('/slow', async () => { await new Promise((resolve) => setTimeout(resolve, 1000)); return { slow: true, pid: process.pid } })",
    '}',
    ''
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, scripts: { start: startScript } }))
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'prodserver'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'dist', 'lib', 'cli.js')}" "$@"\n`, { mode: 0o755 })
  return dir
}

export function run (t: Teardown, command: string, args: string[], cwd: string) {
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'development' } })
  t.teardown(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch {} })
  const lines: LogLine[] = []
  let pending = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    pending += d
    let nl
    while ((nl = pending.indexOf('\n')) !== -1) {
      try { lines.push(JSON.parse(pending.slice(0, nl))) } catch { /* npm's own lines */ }
      pending = pending.slice(nl + 1)
    }
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const line = (msg: string | RegExp) => eventually(() => lines.find((l) => typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))), 30_000, `log line ${String(msg)}\n${stderr}`, 50)
  return { child, lines, line, exit, stderr: () => stderr }
}
