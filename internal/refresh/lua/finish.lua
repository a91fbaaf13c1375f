-- End a claim on one id.
--
-- KEYS[1] due, KEYS[2] leases, KEYS[3] owners, KEYS[4] dirty, KEYS[5] failures.
-- ARGV[1] id, ARGV[2] the claim's token, ARGV[3] mode, ARGV[4] now in ms,
-- ARGV[5] when a retry is due, in ms. Modes:
--   done     the run succeeded: failures reset; due again now if marked dirty.
--   drop     the work is moot (the instance was deleted, say): as done.
--   retry    the run failed: failures + 1; due at ARGV[5], or now if marked
--            dirty and now is earlier.
--   release  the run did not happen (shutdown): due again now, failures kept.
-- Returns -1 when the token no longer holds the id, else 1 when the id is
-- due again, 0 when it is not.
local id = ARGV[1]
if redis.call('HGET', KEYS[3], id) ~= ARGV[2] then return -1 end
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
local dirty = redis.call('SREM', KEYS[4], id)
local mode = ARGV[3]
local due = nil
if mode == 'done' or mode == 'drop' then
  redis.call('ZREM', KEYS[5], id)
  if dirty == 1 then due = ARGV[4] end
elseif mode == 'retry' then
  redis.call('ZINCRBY', KEYS[5], 1, id)
  due = ARGV[5]
  if dirty == 1 and tonumber(ARGV[4]) < tonumber(due) then due = ARGV[4] end
else
  due = ARGV[4]
end
if due then
  local cur = redis.call('ZSCORE', KEYS[1], id)
  if (not cur) or tonumber(cur) > tonumber(due) then redis.call('ZADD', KEYS[1], due, id) end
  return 1
end
return 0
