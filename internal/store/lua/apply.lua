-- Write an entry if its rev is still the one the caller read, keep its
-- history, and announce the change.
--
-- KEYS[1] the entry hash, KEYS[2] its tombstone, KEYS[3] its history list,
-- KEYS[4] (optional) the dedup mark of the webhook body that caused the
-- write.
-- ARGV[1] the expected rev ("0": the hash must not exist), ARGV[2] "set" or
-- "delete", ARGV[3] the tombstone's TTL in ms, ARGV[4] the tombstone's
-- value, ARGV[5] the events channel, ARGV[6] the message to publish (JSON,
-- carrying the rev the write gives the entry: the expected rev + 1), ARGV[7]
-- the dedup mark's TTL in ms, ARGV[8] a revision to add to the history (JSON;
-- "" for none), ARGV[9] how many revisions the history keeps, ARGV[10] the
-- number n of field/value pairs to set, then the n pairs, then the fields to
-- delete.
-- Returns {1, rev} when written, {0, rev} on a rev mismatch, {-1, rev} when a
-- tombstone forbids the write, {-2, rev} when the dedup mark exists (the
-- body was applied already).
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if #KEYS > 3 and redis.call('EXISTS', KEYS[4]) == 1 then return {-2, rev} end
if rev ~= tonumber(ARGV[1]) then return {0, rev} end
local newrev
if ARGV[2] == 'delete' then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
  newrev = rev + 1
else
  if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, rev} end
  local n = tonumber(ARGV[10])
  if n > 0 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 11, 10 + 2 * n))
  end
  if 11 + 2 * n <= #ARGV then
    redis.call('HDEL', KEYS[1], unpack(ARGV, 11 + 2 * n))
  end
  newrev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
  if ARGV[8] ~= '' then
    redis.call('LPUSH', KEYS[3], ARGV[8])
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[9]) - 1)
  end
end
if #KEYS > 3 then redis.call('SET', KEYS[4], '1', 'PX', ARGV[7]) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, newrev}
