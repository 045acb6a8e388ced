-- Numbers, stores and publishes one chat message, atomically (one script).
-- KEYS[1]: the room's meta hash (epoch, seq)   KEYS[2]: the room's stream
-- ARGV[1]: the message's fields (a JSON object)   ARGV[2]: its time (ms)
-- ARGV[3]: history kept (MAXLEN ~)   ARGV[4]: the epoch to use if the room has none
-- ARGV[5]: the room's channel   ARGV[6]: the sending node's tag for this
-- message, kept in the stream so a node whose link dropped before the reply
-- can tell, from the stream, whether the message was stored.
-- KEYS[3]: the rooms index (room -> last message time), ARGV[7]: the room.
-- KEYS[4]: the room's amendments hash (message id -> 'd' once deleted, else
-- its latest edit's fields; 'r' .. id -> what its reactions add up to, as
-- [[emoji, [name, ...]], ...] in the order used), for pages of old messages
-- (page.lua); ARGV[8]: the message an edit, delete or reaction is for ('' for
-- a message), ARGV[9]: 'edit', 'delete' or 'react'; ARGV[10], ARGV[11],
-- ARGV[12]: a reaction's emoji, name and '1' (on) or '0' (off).
-- ARGV[13]: the prefix of identities' channels: a conversation's record
-- (room '@<owner>-<owner>') is published on both identities' channels too,
-- as '<room> ' and what the room's channel carries; conversations are never
-- listed in the rooms index.
-- Uploaded images: KEYS[5] all files, oldest first (a sorted set by time,
-- kept strictly increasing),
-- KEYS[6] their total bytes, KEYS[7] the room's files by message id;
-- ARGV[14] the image's name ('' for none), ARGV[15] its bytes, ARGV[16]
-- --upload-quota, ARGV[17] the prefix of file keys. The file is stored
-- first (so a refusal, such as Redis' maxmemory, stores nothing), after the
-- oldest files past the quota are removed; files of messages the stream no
-- longer keeps go too.
-- Returns {epoch, id, bytes of all files}. The id is the stream entry's id
-- ("<id>-0"), so readers ask the stream for ids after the one they have.
local function unfile(name)
  local key = ARGV[17] .. name
  local size = redis.call('STRLEN', key)
  if size > 0 then
    redis.call('DEL', key)
    redis.call('DECRBY', KEYS[6], size)
  end
  redis.call('ZREM', KEYS[5], name)
end
if ARGV[14] ~= '' then
  local size, quota = #ARGV[15], tonumber(ARGV[16])
  if size > quota then
    return redis.error_reply('picochat: an image larger than --upload-quota')
  end
  while tonumber(redis.call('GET', KEYS[6]) or '0') + size > quota do
    local oldest = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
    if not oldest then
      redis.call('SET', KEYS[6], 0)
      break
    end
    unfile(oldest)
  end
  redis.call('SET', ARGV[17] .. ARGV[14], ARGV[15])
  -- Scored by time, but always after the newest file: two uploads in one
  -- millisecond (or from a node whose clock is behind) must not be ordered
  -- by their random names, or the quota would evict the newer first.
  local score = tonumber(ARGV[2])
  local newest = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')[2]
  if newest and tonumber(newest) >= score then
    score = tonumber(newest) + 1
  end
  redis.call('ZADD', KEYS[5], score, ARGV[14])
  redis.call('INCRBY', KEYS[6], size)
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- A new room, or one whose meta was lost: a new id sequence. A stream left
  -- from the old one would refuse the new ids, and must not be read as this one's.
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2], KEYS[4])
  for _, name in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
    unfile(name)
  end
  redis.call('DEL', KEYS[7])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id .. '-0', 't', ARGV[2], 'f', ARGV[1], 'n', ARGV[6])
if ARGV[14] ~= '' then
  redis.call('ZADD', KEYS[7], id, ARGV[14])
end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) and redis.call('EXISTS', KEYS[7]) == 1 then
  -- The stream may have been trimmed: its images before its first entry go.
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  local oldest = first and tonumber(string.match(first[1], '^(%d+)')) or id
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', '(' .. oldest)) do
    unfile(name)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. oldest)
end
local a, b = string.match(ARGV[7], '^@(%x+)-(%x+)$')
if not a then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[7])
end
if ARGV[8] ~= '' then
  if ARGV[9] == 'delete' then
    redis.call('HSET', KEYS[4], ARGV[8], 'd')
    redis.call('HDEL', KEYS[4], 'r' .. ARGV[8])
  elseif ARGV[9] == 'react' then
    if redis.call('HGET', KEYS[4], ARGV[8]) ~= 'd' then
      local key = 'r' .. ARGV[8]
      local held = redis.call('HGET', KEYS[4], key)
      local list = held and cjson.decode(held) or {}
      local at = nil
      for i, pair in ipairs(list) do
        if pair[1] == ARGV[10] then at = i end
      end
      if ARGV[12] == '1' then
        if not at then
          table.insert(list, {ARGV[10], {}})
          at = #list
        end
        local names, there = list[at][2], false
        for _, n in ipairs(names) do
          if n == ARGV[11] then there = true end
        end
        if not there then table.insert(names, ARGV[11]) end
      elseif at then
        local names = list[at][2]
        for i = #names, 1, -1 do
          if names[i] == ARGV[11] then table.remove(names, i) end
        end
        if #names == 0 then table.remove(list, at) end
      end
      if #list == 0 then
        redis.call('HDEL', KEYS[4], key)
      else
        redis.call('HSET', KEYS[4], key, cjson.encode(list))
      end
    end
  elseif redis.call('HGET', KEYS[4], ARGV[8]) ~= 'd' then
    redis.call('HSET', KEYS[4], ARGV[8], ARGV[1])
  end
  -- Amendments of messages the stream no longer keeps go, now and then
  -- (past twice what the stream keeps, so the sweep's cost is spread thin).
  if redis.call('HLEN', KEYS[4]) > 2 * tonumber(ARGV[3]) then
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
    local oldest = first and tonumber(string.match(first[1], '^(%d+)')) or id
    for _, k in ipairs(redis.call('HKEYS', KEYS[4])) do
      local n = tonumber(string.match(k, '%d+'))
      if n and n < oldest then redis.call('HDEL', KEYS[4], k) end
    end
  end
end
-- The index keeps the 1,000 rooms with the newest messages (trimmed by 100s).
if redis.call('ZCARD', KEYS[3]) > 1100 then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1001)
end
local published = epoch .. ' ' .. id .. ' ' .. ARGV[2] .. ' ' .. ARGV[1]
redis.call('PUBLISH', ARGV[5], published)
if a then
  redis.call('PUBLISH', ARGV[13] .. a, ARGV[7] .. ' ' .. published)
  redis.call('PUBLISH', ARGV[13] .. b, ARGV[7] .. ' ' .. published)
end
return {epoch, id, tonumber(redis.call('GET', KEYS[6]) or '0')}
