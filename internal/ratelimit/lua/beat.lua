-- Registers a replica as alive until ARGV[2] ms from now (Redis's clock),
-- forgets the replicas whose registration ran out, and counts the rest.
--
-- KEYS[1]  sorted set: replica id → when its registration ends (ms)
-- ARGV[1]  this replica's id
-- ARGV[2]  how long the registration lasts, in ms
--
-- Returns the number of replicas alive, this one included.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
