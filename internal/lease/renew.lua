-- Renew a lease if this holder still has it.
-- KEYS[1] the lease key. ARGV[1] the holder's token, ARGV[2] the new TTL in ms.
-- Returns 1 when renewed, 0 when the lease is another holder's or gone.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
