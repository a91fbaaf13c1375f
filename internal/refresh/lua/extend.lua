-- Renew the lease of a claim.
--
-- KEYS[1] leases, KEYS[2] owners. ARGV[1] id, ARGV[2] the claim's token,
-- ARGV[3] the new lease end in ms.
-- Returns 1 when renewed, 0 when the token no longer holds the id.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
