-- Claim due ids from one shard of the work set.
--
-- KEYS[1] due, KEYS[2] leases, KEYS[3] owners (hash id -> claim token),
-- KEYS[4] dirty, KEYS[5] failures (zset id -> failed runs since the last
-- success), KEYS[6] asked.
-- ARGV[1] now in ms, ARGV[2] lease in ms, ARGV[3] most ids to claim,
-- ARGV[4] the claim's token.
--
-- First returns the ids of expired leases (their worker died) to due, then
-- claims up to ARGV[3] due ids. Returns Redis's clock in ms, the due ms of
-- the earliest id left queued or "", then id, failures, since triples: since
-- is when a job was last asked for, or when an instance became due.
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  local cur = redis.call('ZSCORE', KEYS[1], id)
  if (not cur) or tonumber(cur) > now then redis.call('ZADD', KEYS[1], now, id) end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local t = redis.call('TIME')
local out = {tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)), ''}
for _, id in ipairs(ids) do
  local since = redis.call('HGET', KEYS[6], id) or redis.call('ZSCORE', KEYS[1], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
  redis.call('HSET', KEYS[3], id, ARGV[4])
  out[#out + 1] = id
  out[#out + 1] = redis.call('ZSCORE', KEYS[5], id) or '0'
  out[#out + 1] = since
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
out[2] = first[2] or ''
return out
