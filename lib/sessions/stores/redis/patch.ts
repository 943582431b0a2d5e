/**
 * The Redis store's patch: one EVALSHA that applies a SessionPatch to the session's JSON text
 * inside Redis — atomic (a script runs alone), one round trip, one key (Cluster-safe) — and leaves
 * a plain JSON object in the key, so @fastify/session + connect-redis still read it (rollback) and
 * read what they wrote (migration).
 *
 * The script splices the JSON text: it walks the top-level object of the stored value, copies the
 * members the patch does not name byte for byte, and puts the patch's members (JSON text made by
 * JSON.stringify in the application) in place of, or after, the stored ones. Nothing is decoded
 * and re-encoded, on purpose: Redis's Lua cjson re-encodes numbers with 14 significant digits
 * (1234567890.123456 → 1234567890.1235), turns `[]` into `{}` and loses integers above 2^53, so a
 * decode/encode merge would silently change members that no request touched.
 *
 * The alternative, a compare-and-swap (read, merge in JavaScript, write if unchanged), costs a
 * second round trip on every save (or a version read at load) and retries under exactly the
 * contention this exists for; the splice is one round trip whatever the contention. Its cost is
 * a scan of the stored text in Lua: measured in bench/ (see the README's benchmark notes).
 */
import { IS_TOMBSTONE, LuaScript } from './scripts'
import type { PatchOutcome, SessionPatch } from '../types'
import { SessionTooLargeError } from '../../size-limit'

/**
 * KEYS[1] the session key. ARGV: [1] ttl ms, [2] the session-size limit in bytes (0: none),
 * [3] number of members set (n), then n pairs (name as a JSON string token, value JSON
 * text), then the names to remove (JSON string tokens). Returns 1 written, 0 nothing there
 * (missing, expired or a tombstone: never created), -1 removed (ttl <= 0), -2 the stored value is
 * not a JSON object, {-3, bytes} the merged record is over the limit (nothing written in either).
 *
 * Names are compared decoded: a stored name token with escapes (`"a\u0062"`) is decoded with cjson
 * (strings only, which cjson decodes exactly) and matches the patch's `"ab"`.
 */
export const PATCH_RECORD = new LuaScript(`${IS_TOMBSTONE}
local s = redis.call('GET', KEYS[1])
if not s or is_tombstone(s) then return 0 end
local ttl = tonumber(ARGV[1])
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return -1
end
local find, byte, sub = string.find, string.byte, string.sub
local len = #s
local function ws (i)
  return find(s, '[^ \\t\\r\\n]', i) or len + 1
end
local function skipString (i)
  local j = i + 1
  while true do
    local k = find(s, '["\\\\]', j)
    if not k then return nil end
    if byte(s, k) == 92 then j = k + 2 else return k + 1 end
  end
end
local function skipValue (i)
  local c = byte(s, i)
  if c == 34 then return skipString(i) end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local k = find(s, '[%[%]{}"]', j)
      if not k then return nil end
      local b = byte(s, k)
      if b == 34 then
        j = skipString(k)
        if not j then return nil end
      else
        if b == 123 or b == 91 then depth = depth + 1 else depth = depth - 1 end
        j = k + 1
        if depth == 0 then return j end
      end
    end
  end
  local k = find(s, '[,}%]%s]', i) or len + 1
  if k == i then return nil end
  return k
end
local function nameOf (token)
  if not find(token, '\\\\', 1, true) then return sub(token, 2, -2) end
  local ok, name = pcall(cjson.decode, token)
  if ok and type(name) == 'string' then return name end
  return token
end

local stored = {}
local i = ws(1)
if byte(s, i) ~= 123 then return -2 end
i = ws(i + 1)
if byte(s, i) ~= 125 then
  while true do
    if byte(s, i) ~= 34 then return -2 end
    local nameEnd = skipString(i)
    if not nameEnd then return -2 end
    local token = sub(s, i, nameEnd - 1)
    i = ws(nameEnd)
    if byte(s, i) ~= 58 then return -2 end
    i = ws(i + 1)
    local valueEnd = skipValue(i)
    if not valueEnd then return -2 end
    stored[#stored + 1] = {token, i, valueEnd - 1}
    i = ws(valueEnd)
    local b = byte(s, i)
    if b == 44 then i = ws(i + 1) elseif b == 125 then break else return -2 end
  end
end
if ws(i + 1) <= len then return -2 end

local nset = tonumber(ARGV[3])
local set, order = {}, {}
for a = 4, 3 + 2 * nset, 2 do
  local name = nameOf(ARGV[a])
  if not set[name] then order[#order + 1] = name end
  set[name] = ARGV[a] .. ':' .. ARGV[a + 1]
end
local unset = {}
for a = 4 + 2 * nset, #ARGV do unset[nameOf(ARGV[a])] = true end

local out, written = {}, {}
for _, m in ipairs(stored) do
  local name = nameOf(m[1])
  if not unset[name] then
    local replaced = set[name]
    if replaced then
      if not written[name] then
        out[#out + 1] = replaced
        written[name] = true
      end
    else
      out[#out + 1] = m[1] .. ':' .. sub(s, m[2], m[3])
    end
  end
end
for _, name in ipairs(order) do
  if not written[name] then out[#out + 1] = set[name] end
end
local merged = '{' .. table.concat(out, ',') .. '}'
local limit = tonumber(ARGV[2])
if limit > 0 and #merged > limit then return {-3, #merged} end
redis.call('SET', KEYS[1], merged, 'PX', ttl)
return 1
`)

/** ARGV after the ttl and the size limit, in PATCH_RECORD's order. */
export function patchArguments (patch: SessionPatch): string[] {
  const args: string[] = [String(patch.set.length)]
  for (const [name, json] of patch.set) args.push(JSON.stringify(name), json)
  for (const name of patch.unset) args.push(JSON.stringify(name))
  return args
}

/** PATCH_RECORD's reply → what the store reports; a record over the limit throws SessionTooLargeError. */
export function patchOutcome (reply: unknown, maxBytes: number): PatchOutcome {
  if (Array.isArray(reply)) throw new SessionTooLargeError(Number(reply[1]), maxBytes)
  const code = Number(reply)
  if (code === 1 || code === -1) return 'applied'
  if (code === -2) return 'unreadable'
  return 'missing'
}
