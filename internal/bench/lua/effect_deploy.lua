-- The least a deploy event must do in Redis, for the effect floor (see
-- EffectFloorHandler): mark the body applied and queue a fetch of the
-- instance — due now unless due earlier, or once more after the fetch in
-- flight.
--
-- KEYS[1] due (zset), KEYS[2] leases (zset), KEYS[3] dirty (set), KEYS[4]
-- the body's dedup mark.
-- ARGV[1] now in ms, ARGV[2] the mark's TTL in ms, ARGV[3] the instance id.
-- Returns 1 when queued, 0 when already due, -2 when the body was applied
-- already.
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[2]) then return -2 end
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then return redis.call('SADD', KEYS[3], ARGV[3]) end
return redis.call('ZADD', KEYS[1], 'LT', 'CH', ARGV[1], ARGV[3])
