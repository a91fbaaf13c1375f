-- Look at one shard of the work set without changing it.
--
-- KEYS[1] due, KEYS[2] leases. ARGV[1] now in ms.
-- Returns {ids due now, leases expired by now, due ms of the earliest queued
-- id or ""}.
local now = ARGV[1]
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local expired = redis.call('ZCOUNT', KEYS[2], '-inf', now)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {due, expired, first[2] or ''}
