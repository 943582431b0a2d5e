#!/usr/bin/env node
/**
 * prodserver CLI: argv → plan → serve / config.
 * (Foundation stub.)
 */
import { parseArgv } from './config/argv'
import { KnobError } from './config/values'

function main (argv: string[]): void {
  try {
    parseArgv(argv)
  } catch (err) {
    if (err instanceof KnobError) {
      process.stderr.write(`prodserver: ${err.message}\n`)
      process.exit(err.exitCode)
    }
    throw err
  }
}

main(process.argv.slice(2))
