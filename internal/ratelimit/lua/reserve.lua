-- Reserves the next requests of a limit shared by every replica: a generic
-- cell rate algorithm (GCRA) on Redis's clock, so the replicas' clocks do
-- not matter.
--
-- KEYS[1]  the limit's theoretical arrival time (µs since the epoch)
-- ARGV[1]  emission interval in µs: 1e6 / rate
-- ARGV[2]  burst tolerance in µs: (burst - 1) × interval
-- ARGV[3]  the longest wait the caller accepts, in µs (0: any)
-- ARGV[4]  how many requests to reserve, one interval apart
--
-- Returns the wait in µs before the first of them may be sent (0: at once),
-- or -1 when that wait would be longer than ARGV[3]; nothing is reserved
-- then.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local longest = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if longest > 0 and wait > longest then return -1 end
local nxt = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)
return math.floor(wait)
