/**
 * node-redis (`redis` 5: `createClient`, `createCluster`, `createSentinel`) behind the store's
 * client seam (client.ts). ioredis is the client we build ourselves; node-redis is what a user may
 * hand us as `redisClient` — ioredis's own README now recommends node-redis for new projects, and
 * connect-redis 9 supports only it. Nothing is imported from `redis`: clients are recognised by
 * shape (as connect-redis 8 does: `scanIterator` / `masters`), so it is no dependency of ours.
 *
 * Every command goes through the client's `sendCommand` with the key first, so:
 * - a client sends it to its server; a Sentinel sends it to the current master (reads too: a
 *   replica could return a session that was just destroyed); a Cluster routes it by the key's slot
 *   (every script touches exactly one key: Cluster-safe);
 * - the replies are the same arrays/strings/integers as ioredis's (RESP2 and RESP3 alike for what
 *   the scripts return).
 *
 * The client is the user's: used as configured, never connected by us (node-redis wants an
 * explicit `await client.connect()`, and connecting it ourselves would make the app's own connect
 * fail), never closed. The store's own timer and breaker still bound every operation.
 */
import { withTimeout } from '../../bounded'
import { StoreConnectError } from '../../errors'
import type { ClientHandle, RedisCommands, ScanNode } from './client'

type Args = string[]
interface Events {
  on (event: string, fn: (...args: any[]) => void): unknown
  removeListener (event: string, fn: (...args: any[]) => void): unknown
}

/** node-redis `RedisClientType` (the parts we use). */
export interface NodeRedisSingle extends Events {
  readonly isOpen: boolean
  readonly isReady: boolean
  sendCommand (args: Args): Promise<unknown>
  scanIterator: unknown
}

/** node-redis `RedisClusterType`. */
export interface NodeRedisCluster extends Events {
  readonly isOpen: boolean
  readonly masters: readonly unknown[]
  nodeClient (node: any): Promise<NodeRedisSingle> | NodeRedisSingle
  sendCommand (firstKey: string | undefined, isReadonly: boolean | undefined, args: Args): Promise<unknown>
}

/** node-redis `RedisSentinelType`. */
export interface NodeRedisSentinel extends Events {
  readonly isOpen: boolean
  readonly isReady: boolean
  sendCommand (isReadonly: boolean | undefined, args: Args): Promise<unknown>
  acquire (): Promise<unknown>
  getMasterNode (): unknown
}

export type NodeRedisClient = NodeRedisSingle | NodeRedisCluster | NodeRedisSentinel

type Kind = 'client' | 'cluster' | 'sentinel'

function kindOf (client: unknown): Kind | undefined {
  if (typeof client !== 'object' || client === null) return undefined
  const c = client as Record<string, unknown>
  if (typeof c.sendCommand !== 'function' || typeof c.on !== 'function') return undefined
  if ('masters' in c && typeof c.nodeClient === 'function') return 'cluster'
  if (typeof c.acquire === 'function' && typeof c.getMasterNode === 'function') return 'sentinel'
  if ('scanIterator' in c && typeof c.isReady === 'boolean') return 'client'
  return undefined
}

export function isNodeRedis (client: unknown): client is NodeRedisClient {
  return kindOf(client) !== undefined
}

/**
 * node-redis error replies are ErrorReply subclasses (SimpleError, BlobError), whose `name` is
 * plain 'Error': recognised by the class chain, without importing node-redis.
 */
function isNodeRedisReplyError (err: unknown): boolean {
  for (let p = err; p !== null && typeof p === 'object'; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === 'ErrorReply') return true
  }
  return false
}

/** `send(key, args)`: the one place that knows how each kind routes a command. */
type Send = (key: string | undefined, args: Args) => Promise<unknown>

function commandsOver (send: Send): RedisCommands {
  const strings = (xs: Array<string | number>): string[] => xs.map(String)
  return {
    evalsha: async (sha, numKeys, ...args) => await send(String(args[0]), ['EVALSHA', sha, String(numKeys), ...strings(args)]),
    eval: async (lua, numKeys, ...args) => await send(String(args[0]), ['EVAL', lua, String(numKeys), ...strings(args)]),
    getrange: async (key, start, end) => String(await send(key, ['GETRANGE', key, String(start), String(end)]) ?? ''),
    del: async (key) => Number(await send(key, ['DEL', key])),
    ping: async () => String(await send(undefined, ['PING']))
  }
}

function scanNode (send: (args: Args) => Promise<unknown>): ScanNode {
  return {
    scan: async (cursor, _match, pattern, _count, n) => {
      const [next, keys] = await send(['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(n)]) as [unknown, unknown[]]
      return [String(next), keys.map(String)]
    }
  }
}

export class NodeRedisUserClient implements ClientHandle {
  readonly owned = false
  readonly keyPrefix = ''
  readonly commands: RedisCommands
  readonly describe: string
  private readonly kind: Kind
  private readonly offs = new Set<() => void>()

  constructor (readonly client: NodeRedisClient) {
    const kind = kindOf(client)
    if (kind === undefined) throw new TypeError('RedisSessionStore: `client` is not a node-redis client, cluster or sentinel')
    this.kind = kind
    this.describe = `the node-redis ${kind} passed in \`client\``
    const send: Send = kind === 'cluster'
      ? async (key, args) => await (client as NodeRedisCluster).sendCommand(key, false, args)
      : kind === 'sentinel'
        // isReadonly false: always the master (a replica may lag behind a logout).
        ? async (_key, args) => await (client as NodeRedisSentinel).sendCommand(false, args)
        : async (_key, args) => await (client as NodeRedisSingle).sendCommand(args)
    this.commands = commandsOver(send)
  }

  async masters (): Promise<ScanNode[]> {
    const client = this.client
    if (this.kind === 'cluster') {
      const cluster = client as NodeRedisCluster
      const nodes = await Promise.all(cluster.masters.map(async (m) => await cluster.nodeClient(m)))
      return nodes.map((node) => scanNode(async (args) => await node.sendCommand(args)))
    }
    if (this.kind === 'sentinel') return [scanNode(async (args) => await (client as NodeRedisSentinel).sendCommand(false, args))]
    return [scanNode(async (args) => await (client as NodeRedisSingle).sendCommand(args))]
  }

  isReplyError (err: unknown): boolean {
    return isNodeRedisReplyError(err)
  }

  isReady (): boolean {
    const c = this.client as { isReady?: boolean, isOpen: boolean }
    return c.isReady ?? c.isOpen
  }

  /** A (re)connected client closes the store's circuit at once: `ready`, or a cluster node's `node-ready`. */
  onReady (fn: () => void): () => void {
    const event = this.kind === 'cluster' ? 'node-ready' : 'ready'
    const listener = (): void => fn()
    this.client.on(event, listener)
    const off = (): void => {
      this.client.removeListener(event, listener)
      this.offs.delete(off)
    }
    this.offs.add(off)
    return off
  }

  async warmup (): Promise<void> {}

  needsWarmup (): boolean {
    return false
  }

  /** Boot: the client must be open (the app connects it) and answer PING within `ms`. */
  async connect (ms: number): Promise<void> {
    if (!this.client.isOpen) {
      throw new StoreConnectError(`Session store: ${this.describe} is not connected; accepted: a node-redis client after \`await client.connect()\``)
    }
    try {
      await withTimeout(this.commands.ping(), ms, 'redis ping')
    } catch (err) {
      const inner = (err as { cause?: unknown }).cause ?? err
      throw new StoreConnectError(`Session store: Redis at ${this.describe} not ready within ${ms} ms (${inner instanceof Error ? inner.message : String(inner)})`, err)
    }
  }

  async close (): Promise<void> {
    // Never close a client the user owns; only our listeners go.
    for (const off of [...this.offs]) off()
  }

  sanitize (text: string): string {
    return text
  }
}
