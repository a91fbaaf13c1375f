-- The least a stale mark must do in Redis, for the effect floor (see
-- EffectFloorHandler): mark the body applied, decide on the entry's last
-- update, set the flag and bump the rev, and announce the change.
--
-- KEYS[1] the entry hash, KEYS[2] the body's dedup mark.
-- ARGV[1] the event's time in ms, ARGV[2] the mark's TTL in ms, ARGV[3] the
-- change channel, ARGV[4] the message.
-- Returns the entry's rev, or -2 when the body was applied already.
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return -2 end
local cur = redis.call('HMGET', KEYS[1], 'rev', 'updated_event_at')
local rev = tonumber(cur[1] or '0')
if tonumber(cur[2] or '0') >= tonumber(ARGV[1]) then return rev end
redis.call('HSET', KEYS[1], 'stale', '1', 'updated_event_at', ARGV[1], 'rev', rev + 1)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return rev + 1
