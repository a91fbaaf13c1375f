-- Read work left in the single-slot layout of earlier versions ("{work}"),
-- so that it can be moved into the sharded work set.
--
-- KEYS[1] old due, KEYS[2] old leases. ARGV[1] now in ms, ARGV[2] most to read.
-- Returns kind, id, score triples: "due" ids with their due ms, and "lease"
-- ids whose lease ended (their worker, of the old version, died) with their
-- lease end. Nothing is changed: legacy_forget.lua removes what was moved.
local out = {}
local n = tonumber(ARGV[2])
local due = redis.call('ZRANGE', KEYS[1], 0, n - 1, 'WITHSCORES')
for i = 1, #due, 2 do
  out[#out + 1] = 'due'
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
end
local leases = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, n)
for i = 1, #leases, 2 do
  out[#out + 1] = 'lease'
  out[#out + 1] = leases[i]
  out[#out + 1] = leases[i + 1]
end
return out
