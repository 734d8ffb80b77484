// The Redis store's writes, each one Lua script: atomic on the server (so concurrent replicas see one order), and a
// no-op when it starts after its deadline (see connection.ts). ARGV[1] is the deadline, ARGV[2] the key prefix; the
// rest is named at each script. Records are JSON strings that the scripts store and hand back but never re-encode
// (Lua's cjson would turn empty arrays into objects); what scripts change (revocation, rotation) lives in fields
// beside the JSON. Key layout: README "Running more than one replica".

import { script } from "./connection.ts";

const DAY_MS = 86_400_000;

const helpers = `
local P = ARGV[2]
local function revoke(id, at, reason)
  local gk = P .. 'grant:' .. id
  if redis.call('EXISTS', gk) == 0 then return end
  if redis.call('HEXISTS', gk, 'ra') == 0 then redis.call('HSET', gk, 'ra', at, 'rr', reason) end
  local rk = P .. 'rts-of:' .. id
  for _, h in ipairs(redis.call('SMEMBERS', rk)) do
    redis.call('DEL', P .. 'rt:' .. h, P .. 'answer:' .. h)
    redis.call('ZREM', P .. 'rts', h)
  end
  redis.call('DEL', rk)
  redis.call('PUBLISH', P .. 'events', 'g|' .. id)
end
local function put_rt(h, g, c, e, r)
  local k = P .. 'rt:' .. h
  redis.call('DEL', k)
  redis.call('HSET', k, 'g', g, 'c', c, 'e', e)
  local forget = tonumber(e)
  if r ~= '' then
    redis.call('HSET', k, 'r', r)
    local f = tonumber(r) + ${DAY_MS}
    if f < forget then forget = f end
  end
  redis.call('SADD', P .. 'rts-of:' .. g, h)
  redis.call('ZADD', P .. 'rts', forget, h)
end
`;

const s = (name: string, body: string) => script(name, `${helpers}\n${body}`);

export const SCRIPTS = {
  /** 3 client_id, 4 json */
  putClient: s(
    "put_client",
    `redis.call('SET', P .. 'client:' .. ARGV[3], ARGV[4])
redis.call('SADD', P .. 'clients', ARGV[3])
redis.call('PUBLISH', P .. 'events', 'c|' .. ARGV[3])
return {'ok'}`,
  ),
  /** 3 client_id, 4 at → {1} deleted, {0} unknown */
  deleteClient: s(
    "delete_client",
    `local id = ARGV[3]
if redis.call('EXISTS', P .. 'client:' .. id) == 0 then return {0} end
redis.call('DEL', P .. 'client:' .. id, P .. 'consents:' .. id)
redis.call('SREM', P .. 'clients', id)
redis.call('SREM', P .. 'consent-clients', id)
for _, g in ipairs(redis.call('SMEMBERS', P .. 'grants-of:' .. id)) do revoke(g, ARGV[4], 'client deleted') end
redis.call('PUBLISH', P .. 'events', 'c|' .. id)
return {1}`,
  ),
  /** 3 client_id, 4 subject, 5 json */
  putConsent: s(
    "put_consent",
    `redis.call('HSET', P .. 'consents:' .. ARGV[3], ARGV[4], ARGV[5])
redis.call('SADD', P .. 'consent-clients', ARGV[3])
return {'ok'}`,
  ),
  /**
   * 3 id, 4 client_id, 5 expires_at, 6 json, 7 revoked_at|'', 8 reason|'', then optionally 9 rt hash|'', 10 created,
   * 11 expires, 12 the hash of the code it is redeemed from|'' → {'ok'} | {'refused'} (that code was replayed, or is
   * no longer bound to this grant: nothing stored)
   */
  putGrant: s(
    "put_grant",
    `if ARGV[12] and ARGV[12] ~= '' then
  local ck = P .. 'code:' .. ARGV[12]
  if redis.call('HGET', ck, 'g') ~= ARGV[3] or redis.call('HEXISTS', ck, 'x') == 1 then return {'refused'} end
end
local k = P .. 'grant:' .. ARGV[3]
redis.call('DEL', k)
redis.call('HSET', k, 'j', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', k, 'ra', ARGV[7], 'rr', ARGV[8]) end
redis.call('SADD', P .. 'grants-of:' .. ARGV[4], ARGV[3])
redis.call('ZADD', P .. 'grants', ARGV[5], ARGV[3])
if ARGV[9] and ARGV[9] ~= '' then put_rt(ARGV[9], ARGV[3], ARGV[10], ARGV[11], '') end
redis.call('PUBLISH', P .. 'events', 'g|' .. ARGV[3])
return {'ok'}`,
  ),
  /** 3 id, 4 at, 5 reason */
  revokeGrant: s(
    "revoke_grant",
    `revoke(ARGV[3], ARGV[4], ARGV[5])
return {'ok'}`,
  ),
  /** 3 hash, 4 grant_id, 5 created, 6 expires, 7 rotated_at|'' */
  putRefresh: s(
    "put_refresh",
    `put_rt(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return {'ok'}`,
  ),
  /**
   * 3 old hash, 4 new hash, 5 grant_id, 6 created, 7 expires, 8 at, 9 sealed answer|'', 10 answer until, 11 answer px
   * → {'rotated'} | {'already', rotated_at, answer|nil} | {'missing'}
   */
  rotate: s(
    "rotate_refresh",
    `local ok = P .. 'rt:' .. ARGV[3]
if redis.call('EXISTS', ok) == 0 then return {'missing'} end
local used = redis.call('HGET', ok, 'r')
if used then
  local a = redis.call('GET', P .. 'answer:' .. ARGV[3])
  if a then
    local bar = string.find(a, '|', 1, true)
    if tonumber(string.sub(a, 1, bar - 1)) >= tonumber(ARGV[8]) then return {'already', used, string.sub(a, bar + 1)} end
  end
  return {'already', used}
end
redis.call('HSET', ok, 'r', ARGV[8])
local forget = tonumber(ARGV[8]) + ${DAY_MS}
if forget < tonumber(redis.call('HGET', ok, 'e')) then redis.call('ZADD', P .. 'rts', forget, ARGV[3]) end
put_rt(ARGV[4], ARGV[5], ARGV[6], ARGV[7], '')
if ARGV[9] ~= '' then redis.call('SET', P .. 'answer:' .. ARGV[3], ARGV[10] .. '|' .. ARGV[9], 'PX', ARGV[11]) end
return {'rotated'}`,
  ),
  /** 3 hash, 4 json, 5 px */
  putCode: s(
    "put_code",
    `local k = P .. 'code:' .. ARGV[3]
redis.call('DEL', k)
redis.call('HSET', k, 'j', ARGV[4])
redis.call('PEXPIRE', k, ARGV[5])
return {'ok'}`,
  ),
  /**
   * 3 hash, 4 grant_id → {'none'} | {'first', json} | {'replay', json, grant_id}; a replay marks the code (field x):
   * put_grant then refuses the grant bound to it, and release_code leaves it spent
   */
  consumeCode: s(
    "consume_code",
    `local k = P .. 'code:' .. ARGV[3]
local j = redis.call('HGET', k, 'j')
if not j then return {'none'} end
local g = redis.call('HGET', k, 'g')
if g then
  redis.call('HSET', k, 'x', '1')
  return {'replay', j, g}
end
redis.call('HSET', k, 'g', ARGV[4])
return {'first', j}`,
  ),
  /** 3 hash, 4 grant_id */
  releaseCode: s(
    "release_code",
    `local k = P .. 'code:' .. ARGV[3]
if redis.call('HGET', k, 'g') == ARGV[4] and redis.call('HEXISTS', k, 'x') == 0 then redis.call('HDEL', k, 'g') end
return {'ok'}`,
  ),
  /** 3 kid, 4 json, 5 created_at, 6 at, 7 retired expires_at, 8 the active kid expected|'' → {'added'} | {'conflict'} */
  addKey: s(
    "add_key",
    `local active, newest = '', nil
local live = {}
for _, kid in ipairs(redis.call('ZRANGE', P .. 'keys', 0, -1)) do
  local kk = P .. 'key:' .. kid
  if redis.call('HEXISTS', kk, 'ra') == 0 then
    table.insert(live, kk)
    local c = tonumber(redis.call('HGET', kk, 'c'))
    if newest == nil or c > newest then active = kid; newest = c end
  end
end
if active ~= ARGV[8] then return {'conflict'} end
for _, kk in ipairs(live) do redis.call('HSET', kk, 'ra', ARGV[6], 'ea', ARGV[7]) end
redis.call('HSET', P .. 'key:' .. ARGV[3], 'j', ARGV[4], 'c', ARGV[5])
redis.call('ZADD', P .. 'keys', ARGV[5], ARGV[3])
redis.call('PUBLISH', P .. 'events', 'k|')
return {'added'}`,
  ),
  /** 3 kid, 4 json, 5 created_at, 6 retired_at|'', 7 expires_at|'' (import) */
  putKey: s(
    "put_key",
    `local kk = P .. 'key:' .. ARGV[3]
redis.call('DEL', kk)
redis.call('HSET', kk, 'j', ARGV[4], 'c', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', kk, 'ra', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', kk, 'ea', ARGV[7]) end
redis.call('ZADD', P .. 'keys', ARGV[5], ARGV[3])
redis.call('PUBLISH', P .. 'events', 'k|')
return {'ok'}`,
  ),
  /** 3 id, 4 json, 5 expires_at, 6 revoked_at|'' */
  putSession: s(
    "put_session",
    `local k = P .. 'bs:' .. ARGV[3]
redis.call('DEL', k)
redis.call('HSET', k, 'j', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', k, 'ra', ARGV[6]) end
redis.call('ZADD', P .. 'bss', ARGV[5], ARGV[3])
return {'ok'}`,
  ),
  /** 3 id, 4 at → {1} | {0} */
  revokeSession: s(
    "revoke_session",
    `local k = P .. 'bs:' .. ARGV[3]
if redis.call('EXISTS', k) == 0 or redis.call('HEXISTS', k, 'ra') == 1 then return {0} end
redis.call('HSET', k, 'ra', ARGV[4])
redis.call('PUBLISH', P .. 'events', 's|' .. ARGV[3])
return {1}`,
  ),
  /** 3 name, 4 value → {stored value} */
  initSecret: s(
    "init_secret",
    `redis.call('HSETNX', P .. 'secrets', ARGV[3], ARGV[4])
return {redis.call('HGET', P .. 'secrets', ARGV[3])}`,
  ),
  /** 3 jti, 4 exp */
  revokeJti: s(
    "revoke_jti",
    `redis.call('ZADD', P .. 'jtis', ARGV[4], ARGV[3])
redis.call('PUBLISH', P .. 'events', 'j|' .. ARGV[3])
return {'ok'}`,
  ),
  /** 3 kind:id, 4 json, 5 px */
  putTransient: s(
    "put_transient",
    `redis.call('SET', P .. 'tr:' .. ARGV[3], ARGV[4], 'PX', ARGV[5])
return {'ok'}`,
  ),
  /** 3 kind:id → {json} | {} */
  takeTransient: s(
    "take_transient",
    `local v = redis.call('GETDEL', P .. 'tr:' .. ARGV[3])
if v then return {v} end
return {}`,
  ),
  /** 3 now, 4 batch size → {records forgotten} (call again while it is the batch size) */
  sweep: s(
    "sweep",
    `local now, limit, n = ARGV[3], ARGV[4], 0
for _, h in ipairs(redis.call('ZRANGEBYSCORE', P .. 'rts', '-inf', '(' .. now, 'LIMIT', 0, limit)) do
  local k = P .. 'rt:' .. h
  local g = redis.call('HGET', k, 'g')
  if g then redis.call('SREM', P .. 'rts-of:' .. g, h) end
  redis.call('DEL', k, P .. 'answer:' .. h)
  redis.call('ZREM', P .. 'rts', h)
  n = n + 1
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'grants', '-inf', '(' .. now, 'LIMIT', 0, limit)) do
  local k = P .. 'grant:' .. id
  local j = redis.call('HGET', k, 'j')
  if j then redis.call('SREM', P .. 'grants-of:' .. cjson.decode(j).client_id, id) end
  redis.call('DEL', k, P .. 'rts-of:' .. id)
  redis.call('ZREM', P .. 'grants', id)
  redis.call('PUBLISH', P .. 'events', 'g|' .. id)
  n = n + 1
end
n = n + redis.call('ZREMRANGEBYSCORE', P .. 'jtis', '-inf', '(' .. now)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'bss', '-inf', '(' .. now, 'LIMIT', 0, limit)) do
  redis.call('DEL', P .. 'bs:' .. id)
  redis.call('ZREM', P .. 'bss', id)
  n = n + 1
end
for _, kid in ipairs(redis.call('ZRANGE', P .. 'keys', 0, -1)) do
  local ea = redis.call('HGET', P .. 'key:' .. kid, 'ea')
  if ea and tonumber(ea) < tonumber(now) then
    redis.call('DEL', P .. 'key:' .. kid)
    redis.call('ZREM', P .. 'keys', kid)
    redis.call('PUBLISH', P .. 'events', 'k|')
  end
end
return {n}`,
  ),
};
