-- A room's position and the messages a node lacks, read atomically.
-- KEYS[1]: the room's meta hash   KEYS[2]: the room's stream   KEYS[3]: its presence hash
-- ARGV[1]: the last id the node has ('' for the newest ARGV[2] messages)
-- ARGV[2]: history kept   ARGV[3]: the epoch to use if the room has none
-- Returns {epoch, seq, entries, presence}: entries oldest first, each
-- {id, {field, value...}}; presence as HGETALL gives it (see presence.lua).
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
local entries
if ARGV[1] == '' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
  local n = #entries
  for i = 1, math.floor(n / 2) do
    entries[i], entries[n - i + 1] = entries[n - i + 1], entries[i]
  end
else
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+')
end
return {epoch, seq, entries, redis.call('HGETALL', KEYS[3])}
