/**
 * Who started us, from /proc (Linux; elsewhere nothing is known): the parent's command name and
 * its own parent. Used to spot npm running as a container's PID 1 through `sh -c`.
 */
import fs from 'node:fs'

export interface ProcessEntry { pid: number, comm: string, ppid: number }

/** /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses. */
export function parseProcStat (text: string): ProcessEntry | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open === -1 || close < open) return undefined
  const pid = Number(text.slice(0, open).trim())
  const rest = text.slice(close + 1).trim().split(/\s+/)
  const ppid = Number(rest[1])
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return undefined
  return { pid, comm: text.slice(open + 1, close), ppid }
}

export function readProcess (pid: number, procRoot = '/proc'): ProcessEntry | undefined {
  try {
    return parseProcStat(fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8'))
  } catch {
    return undefined
  }
}
