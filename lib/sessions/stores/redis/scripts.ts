/**
 * The two Lua scripts of the store, run with EVALSHA and an EVAL fallback on NOSCRIPT (a restarted
 * server, or another Cluster node, has an empty script cache).
 *
 * Not ioredis `defineCommand`: that adds methods to the client, and a client the user passed in
 * must not be modified. Each script touches exactly one key (KEYS[1]), so it is Cluster-safe, and
 * ioredis applies a client `keyPrefix` to KEYS of EVAL/EVALSHA itself (verified in
 * test/store-contract-redis.test.ts), so we never add it ourselves.
 */
import { createHash } from 'node:crypto'
import type { RedisCommands } from './client'

/**
 * Value of a destroyed id — the one definition of the tombstone format, for every script (each
 * tests a stored value with IS_TOMBSTONE, built from these constants) and for ids().
 *
 * It is the JSON text `null`: a session is always a JSON object (`{…}`), so it cannot collide with
 * one, and every express-session-style reader of the same keys decodes it to "no session" —
 * connect-redis's get (`if (!data)`, then JSON.parse → null), hand-written stores that JSON.parse
 * whatever GET returned, express-session and @fastify/session (`if (!session)` → a new session).
 * So rolling back to @fastify/session + connect-redis, or running both during a deploy, never
 * answers 5xx on a cookie we logged out (test/sessions-migration.test.ts).
 */
export const TOMBSTONE = 'null'

/**
 * Tombstones written by earlier builds, still tombstones for the rest of their lifetime (up to
 * tombstoneMs after a logout made before the upgrade): `!destroyed` made express-session-style
 * readers throw "Unexpected token '!'" (a 500), which is why it was replaced, but to us it must
 * keep meaning "logged out" — read as no session, never saved over, not counted by ids().
 */
export const LEGACY_TOMBSTONES: readonly string[] = ['!destroyed']

const ALL_TOMBSTONES = [TOMBSTONE, ...LEGACY_TOMBSTONES]

/** Is this stored value (or a GETRANGE head of at least TOMBSTONE_HEAD_BYTES) a tombstone? */
export function isTombstone (value: string): boolean {
  return ALL_TOMBSTONES.includes(value)
}

/**
 * Bytes to read from the start of a value to tell a tombstone from a session: one more than the
 * longest tombstone, so a read equal to a tombstone is the whole value (a session starts with `{`).
 */
export const TOMBSTONE_HEAD_BYTES = Math.max(...ALL_TOMBSTONES.map((v) => v.length)) + 1

/** A Lua string literal (the values above are plain ASCII; quotes and backslashes escaped anyway). */
function luaString (text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`
}

/** Lua: `is_tombstone(v)`, for the scripts of the store (here and redis/patch.ts). */
export const IS_TOMBSTONE = `local function is_tombstone(v) return ${ALL_TOMBSTONES.map((v) => `v == ${luaString(v)}`).join(' or ')} end`

export class LuaScript {
  readonly sha: string

  constructor (readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  /** `commands`: the store's ClientHandle.commands (ioredis, or node-redis translated). */
  async run (c: Pick<RedisCommands, 'evalsha' | 'eval'>, key: string, args: Array<string | number>): Promise<unknown> {
    try {
      return await c.evalsha(this.sha, 1, key, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await c.eval(this.lua, 1, key, ...args)
    }
  }
}

/**
 * get: the value and its remaining lifetime in one round trip, atomically (a plain GET + PTTL
 * pipeline can see the key expire in between, and measured 2x slower in ioredis than EVALSHA:
 * ~34k vs ~74k ops/s at 50 concurrent on one core, scratch bench). A tombstone reads as missing.
 * Returns nil or {json, pttl}.
 */
export const GET_WITH_TTL = new LuaScript(`${IS_TOMBSTONE}
local v = redis.call('GET', KEYS[1])
if not v or is_tombstone(v) then return nil end
return {v, redis.call('PTTL', KEYS[1])}
`)

/**
 * set: write the session unless the key holds a tombstone — a slower request that loaded the
 * session before logout must not bring it back (research pitfall 16, L7). A ttl <= 0 removes a live
 * record (connect-redis deletes on a non-positive TTL too) but never a tombstone.
 * ARGV: json, ttlMs. Returns 1 written, 0 refused (tombstone), -1 deleted.
 */
export const SET_UNLESS_TOMBSTONE = new LuaScript(`${IS_TOMBSTONE}
local cur = redis.call('GET', KEYS[1])
if cur and is_tombstone(cur) then return 0 end
local ttl = tonumber(ARGV[2])
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1
`)

/**
 * touch: extend the lifetime of a live session only. A missing key is not created and a tombstone
 * is not extended either (it simply lapses after tombstoneMs; extending it would be harmless but
 * would make "touch" mean something for a destroyed id). ARGV: ttlMs. Returns 1/0.
 */
export const TOUCH_LIVE = new LuaScript(`${IS_TOMBSTONE}
local cur = redis.call('GET', KEYS[1])
if not cur or is_tombstone(cur) then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[1])
`)

/**
 * destroy: replace a stored session (live, or already a tombstone) with a tombstone. An id that
 * holds nothing gets nothing: a fresh, never-saved session being destroyed (logout without a
 * cookie, regenerate() of a new session) must not let anyone grow Redis with tombstones.
 * A legacy tombstone becomes a current one. ARGV: tombstoneMs. Returns 1/0.
 */
export const DESTROY_EXISTING = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ${luaString(TOMBSTONE)}, 'PX', ARGV[1])
return 1
`)
