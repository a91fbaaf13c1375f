-- Release a lease if this holder still has it.
-- KEYS[1] the lease key. ARGV[1] the holder's token.
-- Returns 1 when released, 0 when the lease was another holder's or gone.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
