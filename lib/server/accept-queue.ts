/**
 * Closing a listener without resetting the connections in its accept queue.
 *
 * Closing a listening socket resets every connection the kernel completed and the process has not
 * accepted yet — with the request a proxy already sent on it (nginx: `recv() failed (104)`, a 502
 * for a POST). A busy event loop accepts once per turn, and on a loaded machine a turn can take
 * hundreds of ms: behind nginx with more clients than its pool, 12-18 connections were seen
 * waiting in the queue, and stops reset 6 to 22 POSTs. So the listener is closed right after the
 * kernel reports its accept queue empty (Linux: `/proc/net/tcp{,6}`, a LISTEN socket's rx_queue is
 * its accept queue), each look after a turn of the loop that accepted what was there. Where the
 * queue cannot be read (not Linux, a unix socket), after one turn.
 */
import { closeSync, openSync, readSync } from 'node:fs'

const LISTEN_STATE = '0A'

/**
 * Accept-queue length of the listening TCP sockets on these local ports (IPv4 and IPv6), or
 * undefined when it cannot be read. The kernel lists LISTEN sockets first, so only the head of each
 * file is read (the rest, every connection of a busy machine, would widen the gap between this
 * look and the close that follows it); IPv4 last, the usual listener's file.
 */
export function acceptQueueLength (ports: ReadonlySet<number>): number | undefined {
  let total: number | undefined
  for (const file of ['/proc/net/tcp6', '/proc/net/tcp']) {
    for (const f of listenLines(file)) {
      // sl local_address rem_address st tx_queue:rx_queue …
      const port = parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16)
      if (!ports.has(port)) continue
      total = (total ?? 0) + parseInt(f[4].slice(f[4].indexOf(':') + 1), 16)
    }
  }
  return total
}

const CHUNK = 16 * 1024
const chunk = Buffer.alloc(CHUNK)

/** The fields of the LISTEN lines at the head of a /proc/net/tcp file (none when unreadable). */
function listenLines (file: string): string[][] {
  let fd: number
  try { fd = openSync(file, 'r') } catch { return [] }
  const lines: string[][] = []
  try {
    let rest = ''
    let header = true
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, null)
      if (n === 0) return lines
      const parts = (rest + chunk.toString('latin1', 0, n)).split('\n')
      rest = parts.pop() ?? ''
      for (const line of parts) {
        if (header) { header = false; continue }
        const f = line.trim().split(/\s+/)
        if (f[3] !== LISTEN_STATE) return lines
        lines.push(f)
      }
    }
  } catch {
    return lines
  } finally {
    closeSync(fd)
  }
}

/** A listening libuv handle (TCP or pipe), as net.Server keeps it on `_handle`. */
export interface ListenHandle { listen?: (backlog: number) => number }

/**
 * Closes the listeners with `close`, synchronously right after their accept queue is seen empty,
 * at most maxWaitMs later. First their backlog shrinks to nothing (listen(2) again on a listening
 * socket only changes its backlog): the kernel then queues at most one more connection and drops
 * further SYNs, which their clients retry after a second — and find refused, nothing sent, so a
 * proxy goes to another upstream. Without that a busy loop never sees the queue empty while a
 * proxy keeps connecting. Each look follows a turn of the event loop; Node 20 was seen accepting one
 * queued connection per turn (15 queued took 15 turns), ~80 ms a turn in a busy single process.
 */
export function closeWhenAcceptQueueEmpty (ports: ReadonlySet<number>, listeners: ListenHandle[], maxWaitMs: number, close: () => void): Promise<void> {
  for (const handle of listeners) {
    try { handle.listen?.(0) } catch { /* not a listening handle: nothing to shrink */ }
  }
  return new Promise((resolve) => {
    const deadline = performance.now() + maxWaitMs
    const turn = (): void => {
      const queued = ports.size === 0 ? undefined : acceptQueueLength(ports)
      if (queued === undefined || queued === 0 || performance.now() >= deadline) {
        close()
        resolve()
      } else {
        setImmediate(turn)
      }
    }
    setImmediate(turn)
  })
}
