-- Bring the next attempt of failed work forward, in one shard: after an
-- outage ends, work waiting out its backoff is tried again now instead of up
-- to a whole backoff later.
--
-- KEYS[1] due, KEYS[2] failures. ARGV[1] the new due ms, ARGV[2] the wake
-- channel, ARGV[3] offset into the failures, ARGV[4] how many to look at.
-- Ids being worked on (not in due) are left alone.
-- Returns {ids brought forward, ids looked at}.
local at = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[2], ARGV[3], tonumber(ARGV[3]) + tonumber(ARGV[4]) - 1)
local pulled = 0
for _, id in ipairs(ids) do
  local cur = redis.call('ZSCORE', KEYS[1], id)
  if cur and tonumber(cur) > at then
    redis.call('ZADD', KEYS[1], at, id)
    pulled = pulled + 1
  end
end
if pulled > 0 then redis.call('PUBLISH', ARGV[2], '1') end
return {pulled, #ids}
