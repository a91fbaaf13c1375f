-- Remove from the single-slot layout of earlier versions the work that was
-- moved into the sharded work set, unless it changed since it was read (an
-- old replica queued or claimed it again: it is then moved on a later round).
--
-- KEYS[1] old due, KEYS[2] old leases, KEYS[3] old owners, KEYS[4] old dirty,
-- KEYS[5] old attempts, KEYS[6] old asked.
-- ARGV kind, id, score triples as legacy_take.lua returned them.
-- Returns how many were removed.
local removed = 0
for i = 1, #ARGV, 3 do
  local kind, id, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = KEYS[1]
  if kind == 'lease' then key = KEYS[2] end
  local cur = redis.call('ZSCORE', key, id)
  if cur and tonumber(cur) == tonumber(score) then
    redis.call('ZREM', key, id)
    if kind == 'lease' then
      redis.call('HDEL', KEYS[3], id)
      redis.call('SREM', KEYS[4], id)
    end
    if not redis.call('ZSCORE', KEYS[1], id) and not redis.call('ZSCORE', KEYS[2], id) then
      redis.call('HDEL', KEYS[5], id)
      redis.call('HDEL', KEYS[6], id)
    end
    removed = removed + 1
  end
end
return removed
