/**
 * Who gives up a slot when the connection gate is full and connections are waiting.
 *
 * A slow-HTTP attacker (slowloris, slow body) holds a slot for as long as it keeps trickling bytes
 * in, up to headers-timeout/request-timeout. With a plain FIFO queue every slot an attacker frees
 * goes to the next queued attacker, and a normal client waits behind thousands of them (issue 9:
 * no answer within 10 s at 2,500 connections). node:http and plain Fastify have no limit, so they
 * keep answering; Waitress and Gunicorn's gthread stop accepting and starve the same way.
 *
 * The rule: a slot is for a complete request. Under pressure, connections that have not delivered
 * one are closed first — never-a-byte, partial headers, or a body still trickling in — then idle
 * keep-alive connections; within each group the one without progress for longest goes first.
 * A connection whose complete request is being handled (or whose response is being written) is
 * never chosen, nor one taken over by an upgrade. A connection is left alone for GRACE_MS after it
 * was admitted or last made progress, so a client admitted from the queue gets to present its
 * request (it arrives with the connection) before it can be judged.
 */
import type { Socket } from 'node:net'
import { awaitingRequest, lastRequestAt, type RequestStage } from './request-stage'
import { admittedAt } from './socket-clock'

/**
 * A client's request head travels with its connection: on loopback it is there within a
 * millisecond, over the Internet within one round trip. 100 ms also covers an event-loop hiccup on
 * a loaded machine, and still lets a gate of N slots turn over 10·N connections a second, which is
 * what keeps the queue short when an attack opens connections faster than they can be judged.
 */
export const GRACE_MS = 100

const kSighting = Symbol('prodserver.sighting')

interface Sighting { bytesRead: number, stage: RequestStage, lastRequestAt: number | undefined, since: number }

type Sighted = Socket & { [kSighting]?: Sighting }

export interface Evictions {
  /** Connections to close, worst first. */
  victims: Socket[]
  /** Admitted connections already closing: their slots are about to free up. */
  closing: number
}

/**
 * Picks up to `needed` connections to close among `sockets` (the admitted ones), or fewer when
 * only busy or young connections are left. Sockets already closing count towards `needed`.
 */
export function chooseEvictions (sockets: Iterable<Socket>, needed: number, now: number, stageOf: (socket: Socket) => RequestStage, graceMs = GRACE_MS): Evictions {
  let closing = 0
  const noRequest: Array<{ since: number, socket: Socket }> = []
  const idle: Array<{ since: number, socket: Socket }> = []
  for (const socket of sockets) {
    // Already on its way out: node:http ends a socket after a `Connection: close` response.
    if (socket.destroyed || socket.writableEnded) { closing++; continue }
    const stage = stageOf(socket)
    if (stage === 'in-flight' || stage === 'taken-over') continue
    // Bytes still waiting for the client belong to a response: the send bounds judge those.
    if (stage === 'between-requests' && socket.writableLength > 0) continue
    const since = lastProgress(socket as Sighted, stage, now)
    if (now - since < graceMs) continue
    ;(awaitingRequest(stage) ? noRequest : idle).push({ since, socket })
  }
  const victims: Socket[] = []
  let wanted = needed - closing
  for (const group of [noRequest, idle]) {
    if (wanted <= 0) break
    for (const { socket } of longestStalled(group, wanted)) victims.push(socket)
    wanted -= Math.min(wanted, group.length)
  }
  return { victims, closing }
}

/** The `k` entries with the oldest `since`; usually k is a handful out of hundreds, so no full sort. */
function longestStalled<T extends { since: number }> (entries: T[], k: number): T[] {
  if (k >= entries.length) return entries
  if (k > 16) return entries.sort((a, b) => a.since - b.since).slice(0, k)
  const best: T[] = []
  for (const e of entries) {
    if (best.length === k && e.since >= best[k - 1].since) continue
    let i = best.length === k ? k - 1 : best.length
    while (i > 0 && best[i - 1].since > e.since) { best[i] = best[i - 1]; i-- }
    best[i] = e
  }
  return best
}

/**
 * When the connection last moved: a byte received, a new request, a stage change. Sampled when the
 * gate is under pressure (no per-byte bookkeeping); the first sighting dates from admission or the
 * latest request, whichever is later.
 */
function lastProgress (socket: Sighted, stage: RequestStage, now: number): number {
  const bytesRead = socket.bytesRead
  const latest = lastRequestAt(socket)
  const seen = socket[kSighting]
  if (seen === undefined) {
    const since = Math.max(admittedAt(socket) ?? now, latest ?? -Infinity)
    socket[kSighting] = { bytesRead, stage, lastRequestAt: latest, since }
    return since
  }
  if (seen.bytesRead !== bytesRead || seen.stage !== stage || seen.lastRequestAt !== latest) {
    seen.bytesRead = bytesRead
    seen.stage = stage
    seen.lastRequestAt = latest
    seen.since = now
  }
  return seen.since
}
