-- Who is online in a room, on which node, until when (a node refreshes its
-- entries; any node sweeps the ones past their expiry, so a dead node's
-- users leave within the TTL). Changes are published on the room's channel
-- as 'p' followed by {"n": node, "u": username, "a": avatar, "on": bool}.
-- KEYS[1]: presence hash (field: JSON [node, username]; value: avatar or '',
-- after a '!' when the name is verified by a token)
-- KEYS[2]: expiry sorted set (the same fields; score: expiry in ms)
-- ARGV[1]: 'on', 'off' or 'sweep'   ARGV[2]: the room's channel   ARGV[3]: now (ms)
-- ARGV[4]: TTL (ms)   ARGV[5]: this node
-- then, for 'on': username, avatar pairs; for 'off': usernames.
-- KEYS[3]: the rooms index, ARGV[6]: the room: a room with people and no
-- message yet is listed too (score 0).
local function announce(field, avatar, on)
  local who = cjson.decode(field)
  redis.call('PUBLISH', ARGV[2], 'p' .. cjson.encode({n = who[1], u = who[2], a = avatar, on = on}))
end
if ARGV[1] == 'sweep' then
  local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
  for _, field in ipairs(dead) do
    redis.call('HDEL', KEYS[1], field)
    redis.call('ZREM', KEYS[2], field)
    announce(field, '', false)
  end
  return #dead
end
local expiry = tonumber(ARGV[3]) + tonumber(ARGV[4])
local i = 7
if ARGV[1] == 'on' then
  redis.call('ZADD', KEYS[3], 'NX', 0, ARGV[6])
end
while i <= #ARGV do
  local field = cjson.encode({ARGV[5], ARGV[i]})
  if ARGV[1] == 'on' then
    if redis.call('HSET', KEYS[1], field, ARGV[i + 1]) == 1 then
      announce(field, ARGV[i + 1], true)
    end
    redis.call('ZADD', KEYS[2], expiry, field)
    i = i + 2
  else
    if redis.call('HDEL', KEYS[1], field) == 1 then
      announce(field, '', false)
    end
    redis.call('ZREM', KEYS[2], field)
    i = i + 1
  end
end
return 0
