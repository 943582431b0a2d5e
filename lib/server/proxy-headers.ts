/**
 * trusted-proxy: which peers may speak for the client through X-Forwarded-* / Forwarded.
 *
 * Waitress (3.x, clear_untrusted_proxy_headers=True) deletes every proxy header an untrusted peer
 * sent before the app sees it; Fastify only ignores them for request.ip/protocol/host and leaves
 * them in request.headers (research §7, pitfall 14). We strip them, per request, with a per-
 * connection trust decision made once when the connection is admitted.
 *
 * Fastify ≥ 5.12.1 silently ignores a numeric trustProxy (pitfall 14), so the Fastify side gets a
 * function: only the immediate peer (hop 0) is judged, like Waitress's trusted_proxy_count=1.
 */
import { BlockList, isIP, type Socket } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'

/** The proxy headers Waitress knows, plus X-Forwarded-Prefix which some proxies send. */
const PROXY_HEADERS = [
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port',
  'x-forwarded-by', 'x-forwarded-prefix', 'forwarded'
] as const

export type TrustFn = (address: string | undefined) => boolean

/**
 * Compiles the trusted-proxy list: IPs, CIDRs, `localhost` (loopback and unix-socket peers, as in
 * Waitress where `localhost` means the unix socket), `*` (everyone). Returns undefined when nobody is
 * trusted.
 */
export function compileTrust (list: readonly string[] | undefined): TrustFn | undefined {
  if (list === undefined || list.length === 0) return undefined
  if (list.includes('*')) return () => true
  const blocks = new BlockList()
  let unix = false
  for (const raw of list) {
    const entry = raw.trim()
    if (entry === 'localhost') {
      unix = true
      blocks.addSubnet('127.0.0.0', 8, 'ipv4')
      blocks.addAddress('::1', 'ipv6')
      continue
    }
    const [addr, bits] = entry.split('/')
    const family = isIP(addr)
    if (family === 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits))) {
      throw new Error(`trusted-proxy entry ${JSON.stringify(entry)} is not valid; accepted: IP addresses, CIDRs, localhost or *`)
    }
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) blocks.addAddress(addr, type)
    else blocks.addSubnet(addr, Number(bits), type)
  }
  return (address) => {
    if (address === undefined || address === '') return unix
    const family = isIP(address)
    if (family === 0) return false
    if (family === 6 && address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) {
      return blocks.check(address.slice(7), 'ipv4')
    }
    return blocks.check(address, family === 4 ? 'ipv4' : 'ipv6')
  }
}

/** Fastify's trustProxy: only hop 0 (our socket peer) can be trusted. */
export function fastifyTrustProxy (trust: TrustFn): (address: string, hop: number) => boolean {
  return (address, hop) => hop === 0 && trust(address)
}

/** Set on admitted sockets whose peer is a trusted proxy. */
export const kTrustedPeer = Symbol('prodserver.trustedPeer')

export function markTrust (socket: Socket, trust: TrustFn): void {
  (socket as unknown as Record<symbol, boolean>)[kTrustedPeer] = trust(socket.remoteAddress)
}

export function isTrustedSocket (socket: Socket): boolean {
  return (socket as unknown as Record<symbol, boolean | undefined>)[kTrustedPeer] === true
}

/**
 * Deletes proxy headers, from `headers` and from `rawHeaders` (what a logger, a proxying library
 * or `req.raw.rawHeaders` reads). A handful of property reads per request when none is present.
 */
export function stripProxyHeaders (req: { headers: IncomingHttpHeaders, rawHeaders: string[] }): void {
  const headers = req.headers
  let found = false
  for (let i = 0; i < PROXY_HEADERS.length; i++) {
    const name = PROXY_HEADERS[i]
    if (headers[name] !== undefined) {
      delete headers[name]
      found = true
    }
  }
  if (!found) return
  // rawHeaders is [name, value, name, value, …] with names as sent: remove whole pairs, in place.
  const raw = req.rawHeaders
  let kept = 0
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((PROXY_HEADERS as readonly string[]).includes(raw[i].toLowerCase())) continue
    raw[kept++] = raw[i]
    raw[kept++] = raw[i + 1]
  }
  raw.length = kept
}
