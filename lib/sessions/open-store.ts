/**
 * The I/O half of store selection (select.ts decides): build the chosen store, connect Redis within
 * the boot timeout, fall back to the file store when `auto` picked an unreachable Redis.
 *
 * Boot policy (pitfall 20): an explicitly requested Redis that is unreachable fails the boot with a
 * one-line error naming REDIS_URL without its password (a silent fallback would split sessions
 * between hosts); `auto` keeps the seed's behaviour (NOW LMS): file store + ONE warning.
 */
import { readFileSync } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { KnobError } from '../config/values'
import type { SessionConfig } from './config'
import { selectStore, type StoreKind } from './select'
import { RedisSessionStore } from './stores/redis'
import { MemorySessionStore, MEMORY_PRODUCTION_WARNING } from './stores/memory'
import { FileSessionStore } from './stores/file'
import { ForeignDirectoryError } from './stores/file/dir'
import { INTERNAL_SESSION_DIR_ENV, fallbackWarning, makePrivateDir } from './stores/file/default-dir'
import { CallbackSessionStore } from './stores/callback'
import type { SessionRecordStore } from './stores/types'

export interface OpenedStore {
  store: SessionRecordStore
  kind: StoreKind | 'custom'
  reason: string
  /** We built it: close it with Fastify. A store object passed in code stays the caller's. */
  owned: boolean
}

export async function openStore (config: SessionConfig, log: FastifyBaseLogger): Promise<OpenedStore> {
  const custom = config.customStore
  if (custom !== undefined) {
    const what = custom instanceof CallbackSessionStore ? `a ${custom.description} (@fastify/session / express-session store API)` : `a ${custom.kind} store object`
    return { store: custom, kind: custom.kind, reason: `${what} was passed in code (option store)`, owned: false }
  }
  const selection = selectStore({
    store: config.store,
    storeSource: config.sources['session-store'],
    nodeEnv: config.nodeEnv,
    redisUrl: config.redisUrl,
    redisSentinels: config.redisSentinels,
    redisSentinelName: config.redisSentinelName,
    redisClusterNodes: config.redisClusterNodes,
    redisCaFile: config.redisCaFile,
    sources: config.sources,
    hasRedisClient: config.redisClient !== undefined,
    workerCount: config.workerCount,
    dir: config.dir
  })

  switch (selection.kind) {
    case 'memory':
      if (config.nodeEnv === 'production') {
        // express-session's MemoryStore warning, for the same reasons (pitfall 15).
        log.warn(`sessions: ${MEMORY_PRODUCTION_WARNING}`)
      }
      return { store: new MemorySessionStore({ log }), kind: 'memory', reason: selection.reason, owned: true }
    case 'file': {
      const store = openFile(config, log)
      return { store, kind: 'file', reason: selection.reason.split(config.dir).join(store.dir), owned: true }
    }
    case 'redis':
      break
  }

  // Outside the try: an unreadable CA file is a configuration error, never a reason to fall back.
  const ca = config.redisClient === undefined ? readCaFile(config) : undefined
  const redis = new RedisSessionStore({
    ...(config.redisClient !== undefined
      ? { client: config.redisClient }
      : {
          url: config.redisUrl,
          sentinels: config.redisSentinels,
          sentinelName: config.redisSentinelName,
          sentinelPassword: config.redisSentinelPassword,
          clusterNodes: config.redisClusterNodes,
          ca
        }),
    prefix: config.redisPrefix,
    timeoutMs: config.timeoutMs,
    log
  })
  try {
    await redis.connect(config.bootTimeoutMs)
    return { store: redis, kind: 'redis', reason: selection.reason, owned: true }
  } catch (err) {
    await redis.close().catch(() => {})
    if (!selection.fallbackToFile) throw oneLine(err)
    const message = err instanceof Error ? err.message : String(err)
    log.warn(`sessions: ${message}; falling back to the file store in ${config.dir} (sessions are shared by the workers of this host only)`)
    const store = openFile(config, log)
    return {
      store,
      kind: 'file',
      reason: `auto: Redis unreachable at boot within ${config.bootTimeoutMs} ms; fell back to the file store (${store.dir})`,
      owned: true
    }
  }
}

/**
 * The file store in SESSION_DIR, which must be ours (stores/file/dir.ts): an explicit one that is
 * not fails the boot naming it; the default one is replaced by a private directory (default-dir.ts).
 */
function openFile (config: SessionConfig, log: FastifyBaseLogger): FileSessionStore {
  const open = (dir: string, where: string): FileSessionStore => new FileSessionStore({ dir, where, log, timeoutMs: config.timeoutMs })
  const source = config.sources['session-dir']
  if (!config.dirIsDefault) return open(config.dir, source === undefined ? 'SESSION_DIR' : source.replace(/^env /, ''))
  // The launcher's primary found the default taken and made one private directory for all its workers.
  const handed = process.env[INTERNAL_SESSION_DIR_ENV]
  if (handed !== undefined && handed !== '') return open(handed, `SESSION_DIR (default, ${INTERNAL_SESSION_DIR_ENV})`)
  try {
    return open(config.dir, 'SESSION_DIR (default)')
  } catch (err) {
    if (!(err instanceof ForeignDirectoryError)) throw err
    const fresh = makePrivateDir(config.dir)
    log.warn(fallbackWarning(config.dir, err.reason, fresh, false))
    return open(fresh, 'SESSION_DIR (default)')
  }
}

/**
 * REDIS_CA_FILE is read once, here, at boot (a rotated CA needs a restart, like the TLS certs of
 * most servers). A missing or unreadable file is one line naming the variable, the path and why.
 */
function readCaFile (config: SessionConfig): Buffer | undefined {
  const file = config.redisCaFile
  if (file === undefined) return undefined
  const source = config.sources['redis-ca-file']
  const where = source === undefined || source === 'default' ? 'REDIS_CA_FILE' : source.replace(/^env /, '')
  let pem: Buffer
  try {
    pem = readFileSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))
    throw new KnobError(`${where}=${file} cannot be read (${code}); accepted: a readable PEM file of the CA that signed the Redis certificate`)
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new KnobError(`${where}=${file} holds no PEM certificate; accepted: a readable PEM file of the CA that signed the Redis certificate`)
  }
  return pem
}

/** Boot errors are printed by the launcher as one line: drop the stack's extra lines. */
function oneLine (err: unknown): Error {
  if (err instanceof Error) {
    err.message = err.message.replace(/\s*\n\s*/g, ' ')
    return err
  }
  return new Error(String(err).replace(/\s*\n\s*/g, ' '))
}
