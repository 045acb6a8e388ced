-- A room's position and the messages a node lacks, read atomically.
-- KEYS[1]: the room's meta hash   KEYS[2]: the room's stream   KEYS[3]: its presence hash
-- ARGV[1]: the last id the node has ('' for the newest ARGV[2] messages)
-- ARGV[2]: history kept   ARGV[3]: the epoch to use if the room has none
-- (or if it must start over)   ARGV[4]: the epoch the node has ('' if none).
-- If the sequence is behind the last id the node saw in the same epoch,
-- Redis lost its newest writes (a crash with appendfsync everysec): the ids
-- would be used again for other messages, so the room gets a new epoch and
-- every page reloads it, rather than skip new messages as already seen.
-- Returns {epoch, seq, entries, presence}: entries oldest first, each
-- {id, {field, value...}}; presence as HGETALL gives it (see presence.lua).
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
if ARGV[1] ~= '' and ARGV[4] == epoch and tonumber(seq) < tonumber(ARGV[1]) then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local entries
-- A node new to the room, or holding another epoch: the newest messages.
if ARGV[1] == '' or ARGV[4] ~= epoch then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
  local n = #entries
  for i = 1, math.floor(n / 2) do
    entries[i], entries[n - i + 1] = entries[n - i + 1], entries[i]
  end
else
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+')
end
return {epoch, seq, entries, redis.call('HGETALL', KEYS[3])}
