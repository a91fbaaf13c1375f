-- Read an entry, whether it is tombstoned and, optionally, whether a webhook
-- body's dedup mark exists, as one command: one round trip that can be
-- batched with other callers' commands.
--
-- KEYS[1] the entry hash, KEYS[2] its tombstone, KEYS[3] (optional) the dedup
-- mark.
-- ARGV[1] "all", or "meta" followed by the fields to read.
-- Returns {1} when the mark exists; otherwise {0, tombstoned, fields} with
-- fields the flat HGETALL reply ("all"), or {0, tombstoned, doc length,
-- values} with the HMGET reply of the named fields ("meta").
if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 1 then return {1} end
local tomb = redis.call('EXISTS', KEYS[2])
if ARGV[1] == 'all' then
  return {0, tomb, redis.call('HGETALL', KEYS[1])}
end
return {0, tomb, redis.call('HSTRLEN', KEYS[1], 'doc'), redis.call('HMGET', KEYS[1], unpack(ARGV, 2))}
