/**
 * Where one process listens: a unix socket, or one or more host:port addresses.
 *
 * Fastify listens once per instance, so the first TCP address is Fastify's own listen (its
 * onListen hooks and fastify.addresses() keep working) and every further address is a plain
 * net.Server whose sockets go through the same ConnectionGate into the same http.Server: one
 * connection limit, one set of timeouts, one drain (Waitress's MultiSocketServer, §1.2 `listen`).
 */
import net from 'node:net'
import { promises as fs } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { ListenPlan, ServerPlan } from '../plan/types'
import type { ListenAddress } from '../config/knobs'
import { ServerStartError } from './errors'

export interface Listening {
  addresses: string[]
  /** The extra per-address servers (closed by drain). */
  extra: net.Server[]
}

export async function listenAll (
  fastify: FastifyInstance,
  listen: ListenPlan,
  server: ServerPlan,
  onConnection: (socket: net.Socket) => void
): Promise<Listening> {
  if (listen.kind === 'unix') {
    await removeStaleSocket(listen.path)
    await fastify.listen({ path: listen.path, backlog: listen.backlog })
    // Node only offers readableAll/writableAll (→ 0777); Waitress chmods right after bind (pitfall 13).
    await fs.chmod(listen.path, listen.perms)
    return { addresses: [listen.path], extra: [] }
  }
  if (listen.addresses.length === 0) throw new ServerStartError('listen: no address to listen on')
  const [first, ...rest] = listen.addresses
  const addresses = [await fastify.listen({ host: first.host, port: first.port, backlog: listen.backlog })]
  const extra: net.Server[] = []
  try {
    for (const a of rest) {
      const s = net.createServer({
        // Same socket options node:http gives its own sockets, so every address behaves alike.
        allowHalfOpen: true,
        noDelay: true,
        pauseOnConnect: true,
        ...(server.recvBytes !== undefined ? { highWaterMark: server.recvBytes } : {})
      }, onConnection)
      extra.push(s)
      addresses.push(await listenOne(s, a, listen.backlog))
    }
  } catch (err) {
    for (const s of extra) s.close()
    throw err
  }
  return { addresses, extra }
}

function listenOne (s: net.Server, a: ListenAddress, backlog: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new ServerStartError(`listen ${formatHostPort(a.host, a.port)} failed: ${err.code ?? err.message}`, err.code))
    }
    s.once('error', onError)
    s.listen({ host: a.host, port: a.port, backlog }, () => {
      s.removeListener('error', onError)
      const addr = s.address() as net.AddressInfo
      resolve(`http://${formatHostPort(addr.address, addr.port)}`)
    })
  })
}

function formatHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * Node throws EADDRINUSE on a leftover socket file (pitfall 13); Waitress unlinks it first. But we
 * never remove a regular file, nor a socket another server is still listening on (a second copy
 * started by mistake must fail, not steal the first one's address): we find out by connecting.
 */
export async function removeStaleSocket (path: string): Promise<void> {
  let stat
  try {
    stat = await fs.lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new ServerStartError(`unix-socket ${path} cannot be checked: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  if (!stat.isSocket()) {
    throw new ServerStartError(`unix-socket ${path} exists and is not a socket; refusing to remove it`)
  }
  if (await isLive(path)) {
    throw new ServerStartError(`unix-socket ${path} is in use by another server; stop it or choose another path`)
  }
  try {
    await fs.unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ServerStartError(`unix-socket ${path} is stale but cannot be removed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
  }
}

function isLive (path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(path)
    c.once('connect', () => { c.destroy(); resolve(true) })
    // ECONNREFUSED: nobody listening → stale. Any other error: treat as not live, unlink decides.
    c.once('error', () => resolve(false))
  })
}
