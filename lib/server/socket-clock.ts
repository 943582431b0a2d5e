/**
 * When a connection was accepted (it may then wait at the gate) and when it was admitted (handed to
 * node:http). performance.now() throughout: monotonic, and the clock node:http's own stamps use.
 */
import type { Socket } from 'node:net'

const kAcceptedAt = Symbol('prodserver.acceptedAt')
const kAdmittedAt = Symbol('prodserver.admittedAt')

type Stamped = Socket & { [kAcceptedAt]?: number, [kAdmittedAt]?: number }

export function stampAccepted (socket: Socket, now = performance.now()): void {
  (socket as Stamped)[kAcceptedAt] = now
}

export function stampAdmitted (socket: Socket, now = performance.now()): void {
  (socket as Stamped)[kAdmittedAt] = now
}

/** When the socket was accepted; a socket that never went through the gate counts as accepted when admitted. */
export function acceptedAt (socket: Socket): number | undefined {
  return (socket as Stamped)[kAcceptedAt] ?? (socket as Stamped)[kAdmittedAt]
}

export function admittedAt (socket: Socket): number | undefined {
  return (socket as Stamped)[kAdmittedAt]
}
