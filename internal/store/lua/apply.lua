-- Write an entry if it is still the one the caller read, keep its history,
-- and announce the change.
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
-- expected write id ("*": any), ARGV[11] the number n of field/value pairs
-- to set (the new rev and write id among them), then the n pairs, then the
-- fields to delete.
-- Returns {1, rev} when written, {0, rev} when the entry is not the one
-- expected, {-1, rev} when a tombstone forbids the write, {-2, rev} when the
-- dedup mark exists (the body was applied already).
local cur = redis.call('HMGET', KEYS[1], 'rev', '_write_id')
local rev = tonumber(cur[1] or '0')
local dedup = #KEYS > 3
-- One look for the common case, neither the mark nor a tombstone.
local marked = dedup and redis.call('EXISTS', KEYS[4], KEYS[2]) > 0
if marked and redis.call('EXISTS', KEYS[4]) == 1 then return {-2, rev} end
if rev ~= tonumber(ARGV[1]) then return {0, rev} end
if ARGV[10] ~= '*' and ARGV[10] ~= (cur[2] or '') then return {0, rev} end
if ARGV[2] == 'delete' then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
else
  if (marked or not dedup) and redis.call('EXISTS', KEYS[2]) == 1 then return {-1, rev} end
  local n = tonumber(ARGV[11])
  if n > 0 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 12, 11 + 2 * n))
  end
  if 12 + 2 * n <= #ARGV then
    redis.call('HDEL', KEYS[1], unpack(ARGV, 12 + 2 * n))
  end
  if ARGV[8] ~= '' then
    redis.call('LPUSH', KEYS[3], ARGV[8])
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[9]) - 1)
  end
end
if dedup then redis.call('SET', KEYS[4], '1', 'PX', ARGV[7]) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, rev + 1}
