-- The rooms directory for GET /api/rooms on every node: the rooms with the
-- newest activity, each with its last message time (0: none yet) and how
-- many distinct users are online in it on any node.
-- KEYS[1]: the rooms index (sorted set: room -> last message time)
-- ARGV[1]: how many rooms   ARGV[2]: the key prefix (presence hashes are
-- ARGV[2] .. 'presence:' .. room; standalone Redis only, like picochat).
local rooms = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rooms, 2 do
  local users, n = {}, 0
  for _, field in ipairs(redis.call('HKEYS', ARGV[2] .. 'presence:' .. rooms[i])) do
    local ok, who = pcall(cjson.decode, field)
    if ok and type(who) == 'table' and type(who[2]) == 'string' and not users[who[2]] then
      users[who[2]] = true
      n = n + 1
    end
  end
  out[#out + 1] = rooms[i]
  out[#out + 1] = rooms[i + 1]
  out[#out + 1] = n
end
return out
