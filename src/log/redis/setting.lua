-- Stores one moderation setting and tells every node, atomically.
-- KEYS[1]: the settings hash   ARGV[1]: the setting's key
-- ARGV[2]: its value ('' removes it)   ARGV[3]: the settings channel
-- The notice is "<key>\n<value>" (keys never hold a newline).
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[1] .. '\n' .. ARGV[2])
return 1
