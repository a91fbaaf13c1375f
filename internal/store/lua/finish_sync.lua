-- Record a complete reconcile pass in the sync marker, unless the pass was
-- lost on the way (Redis flushed or replaced mid-pass, or another pass began
-- since: either replaced the pass token).
--
-- KEYS[1] the sync marker hash.
-- ARGV[1] the pass's token, ARGV[2] when it ended, ARGV[3] when it began
-- (RFC 3339).
-- Returns 1 when recorded, 0 when the pass was lost.
if redis.call('HGET', KEYS[1], 'pass') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[2], 'began', ARGV[3])
redis.call('HDEL', KEYS[1], 'pass')
return 1
