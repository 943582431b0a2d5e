/**
 * The real `prodserver` CLI (dist/lib/cli.js), run as an operator runs it: exit code and output.
 */
import path from 'node:path'
import { execFile } from 'node:child_process'
import { ROOT } from './process'

export const PRODSERVER = path.join(ROOT, 'dist', 'lib', 'cli.js')

export interface CliResult { code: number | null, stdout: string, stderr: string }

export function prodserver (args: string[], options: { env?: NodeJS.ProcessEnv, cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PRODSERVER, ...args], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}
