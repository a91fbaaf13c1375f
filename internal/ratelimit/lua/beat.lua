-- Registers a replica as alive until ARGV[2] ms from now (Redis's clock),
-- forgets the replicas whose registration ran out, and counts the rest.
-- (Only commands the daemon's least-privilege ACL user may run: no
-- ZREMRANGEBYSCORE, no PEXPIRE; the set holds one member per live replica.)
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
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[1], id)
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
return redis.call('ZCARD', KEYS[1])
