#!/usr/bin/env node
/**
 * prodserver CLI: argv → plan → serve / config.
 *
 *   prodserver serve <module> [flags]
 *   prodserver config [--json] [flags]
 *   prodserver status [--json] | reload | stop   (lib/cli/control.ts)
 *   prodserver --help | --version
 *
 * Bad input (KnobError) exits with code 2 and one line on stderr naming the flag or variable, the
 * value and what is accepted. Exit codes are set through process.exitCode, never process.exit():
 * `config --json | jq` must get the whole document even when stdout is a slow pipe.
 */
import path from 'node:path'
import { parseArgv, type ParsedArgv } from './config/argv'
import { resolveKnobs } from './config/resolve'
import { KnobError } from './config/values'
import { planServer } from './plan/plan-server'
import { configJson, configText } from './cli/config-report'
import { renderHelp } from './cli/help'
import { packageVersion } from './cli/version'
import { serve } from './serve'
import { controlCommand } from './cli/control'
import { bootErrorStack } from './cluster/app-module'

const COMMANDS = ['serve', 'config', 'status', 'reload', 'stop', 'help']

export interface CliIo {
  stdout (text: string): void
  stderr (text: string): void
  env: NodeJS.ProcessEnv
  cwd: string
}

/** Runs one command; resolves to the exit code (undefined while `serve` keeps the process alive). */
export async function run (argv: readonly string[], io: CliIo): Promise<number | undefined> {
  try {
    const args = parseArgv(argv)
    if (args.switches.has('version')) { io.stdout(`${packageVersion()}\n`); return 0 }
    if (args.switches.has('help') || args.command === 'help') { io.stdout(renderHelp(packageVersion())); return 0 }
    if (args.command === undefined) {
      throw new KnobError(`missing command${args.positional.length > 0 ? ` before ${JSON.stringify(args.positional[0])}` : ''}; accepted: ${COMMANDS.join(', ')} (prodserver --help)`)
    }
    switch (args.command) {
      case 'config': return config(args, io)
      case 'serve': return await serveCommand(args, io)
      case 'status':
      case 'reload':
      case 'stop': return await controlCommand(args.command, args, io)
      default:
        throw new KnobError(`unknown command ${JSON.stringify(args.command)}; accepted: ${COMMANDS.join(', ')} (prodserver --help)`)
    }
  } catch (err) {
    if (err instanceof KnobError) {
      io.stderr(`prodserver: ${err.message}\n`)
      return err.exitCode
    }
    throw err
  }
}

function config (args: ParsedArgv, io: CliIo): number {
  if (args.positional.length > 0) {
    throw new KnobError(`config takes no module, got ${JSON.stringify(args.positional[0])}; accepted: prodserver config [--json] [flags]`)
  }
  const resolved = resolveKnobs({ flags: args.flags, env: io.env })
  const plan = planServer(resolved)
  for (const warning of plan.warnings) io.stderr(`prodserver: warning: ${warning}\n`)
  io.stdout(args.switches.has('json') ? configJson(plan, resolved) : configText(plan, resolved))
  return 0
}

// ── serve hook ───────────────────────────────────────────────────────────────────────────────
// The launcher itself lives in lib/serve.ts (owned by the cluster work). The CLI only turns argv
// into serve({ app, flags }): the module path is resolved against the working directory (as
// fastify-cli does), and the raw flags are handed over so serve() applies the same precedence.
async function serveCommand (args: ParsedArgv, io: CliIo): Promise<number | undefined> {
  const [modulePath, extra] = args.positional
  if (modulePath === undefined) throw new KnobError('serve needs a module; accepted: prodserver serve <module> [flags]')
  if (extra !== undefined) throw new KnobError(`serve takes one module, got also ${JSON.stringify(extra)}; accepted: prodserver serve <module> [flags]`)
  if (args.switches.has('json')) throw new KnobError('--json is only for config; accepted: prodserver config --json')
  // serve() resolves a relative path against this process's cwd; errors then name the path as typed.
  const app = io.cwd === process.cwd() ? modulePath : path.resolve(io.cwd, modulePath)
  await serve({ app, flags: args.flags, env: io.env })
  return undefined
}

/** The `prodserver` binary: runs argv, sets the exit code, prints boot errors with their stack. */
export function main (argv: readonly string[] = process.argv.slice(2)): void {
  run(argv, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd()
  }).then((code) => {
    if (code !== undefined) process.exitCode = code
  }, (err: unknown) => {
    // A boot error: what went wrong, then where (the app's file:line), as cluster mode prints it.
    const stack = bootErrorStack(err)
    process.stderr.write(`prodserver: ${err instanceof Error ? err.message : String(err)}\n${stack !== undefined ? `${stack}\n` : ''}`)
    process.exitCode = (err as { exitCode?: number }).exitCode ?? 1
  })
}

if (require.main === module) main()
