-- Make ids due, in one shard of the work set.
--
-- KEYS[1] due (zset id -> due ms), KEYS[2] leases (zset id -> lease end ms),
-- KEYS[3] dirty (set), KEYS[4] asked (hash job -> latest request ms),
-- KEYS[5] (optional) the dedup mark of the webhook body that asks for the work.
-- ARGV[1] due ms, ARGV[2] "1" to only mark ids being worked on, ARGV[3] the
-- wake channel, ARGV[4] the dedup mark's TTL in ms, ARGV[5..] ids.
--
-- An id already due keeps the earlier of its two times; an id being worked
-- on is marked dirty, to run once more after the current run. Jobs (ids
-- starting with "@") remember the latest time they were asked for.
-- Returns how many ids became due, or -1 when the dedup mark exists (the
-- body was applied already and nothing is queued).
if #KEYS > 4 and redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
local due = tonumber(ARGV[1])
local only_running = ARGV[2] == '1'
local added = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  if string.sub(id, 1, 1) == '@' and not only_running then
    local asked = tonumber(redis.call('HGET', KEYS[4], id) or '0')
    if due > asked then redis.call('HSET', KEYS[4], id, due) end
  end
  if redis.call('ZSCORE', KEYS[2], id) then
    redis.call('SADD', KEYS[3], id)
  elseif not only_running then
    local cur = redis.call('ZSCORE', KEYS[1], id)
    if (not cur) or tonumber(cur) > due then
      redis.call('ZADD', KEYS[1], due, id)
      added = added + 1
    end
  end
end
if #KEYS > 4 then redis.call('SET', KEYS[5], '1', 'PX', ARGV[4]) end
if added > 0 then redis.call('PUBLISH', ARGV[3], '1') end
return added
