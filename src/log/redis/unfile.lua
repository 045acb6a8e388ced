-- Removes one uploaded image (its message was deleted).
-- KEYS[1]: all files by time   KEYS[2]: their total bytes
-- ARGV[1]: the prefix of file keys   ARGV[2]: the image's name
-- Returns the bytes of all files left. Removing one already gone is nothing.
local key = ARGV[1] .. ARGV[2]
local size = redis.call('STRLEN', key)
if size > 0 then
  redis.call('DEL', key)
  redis.call('DECRBY', KEYS[2], size)
end
redis.call('ZREM', KEYS[1], ARGV[2])
return tonumber(redis.call('GET', KEYS[2]) or '0')
