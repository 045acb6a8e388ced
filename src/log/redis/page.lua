-- A page of a room's stream for history and search: messages (never edits or
-- deletes), each with its latest edit, deleted ones left out.
-- KEYS[1]: the room's stream   KEYS[2]: its amendments hash (see publish.lua)
-- ARGV[1]: 'before' (newest first, ids below ARGV[2]) or 'after' (oldest
-- first, ids above ARGV[2] and below ARGV[3])   ARGV[4]: messages wanted
-- ARGV[5]: entries looked at, at most (bounds the script's work).
-- Returns {exhausted, {{id, fields, edit fields or false, reactions or
-- false}, ...}} (reactions as publish.lua keeps them): exhausted
-- is 1 when the range has no more, 0 when the script stopped early.
local want = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local cursor = ARGV[2] .. '-0'
local out = {}
if ARGV[1] == 'before' and tonumber(ARGV[2]) <= 1 then
  return {1, out}
end
while true do
  local batch
  if ARGV[1] == 'before' then
    batch = redis.call('XREVRANGE', KEYS[1], '(' .. cursor, '-', 'COUNT', 100)
  else
    batch = redis.call('XRANGE', KEYS[1], '(' .. cursor, '(' .. ARGV[3] .. '-0', 'COUNT', 100)
  end
  for i, e in ipairs(batch) do
    cursor = e[1]
    local fields = nil
    for j = 1, #e[2], 2 do
      if e[2][j] == 'f' then fields = e[2][j + 1] end
    end
    if fields and string.sub(fields, 1, 9) ~= '{"type":"' then
      local n = string.match(cursor, '^(%d+)')
      local edit = redis.call('HGET', KEYS[2], n)
      if edit ~= 'd' then
        table.insert(out, {cursor, fields, edit, redis.call('HGET', KEYS[2], 'r' .. n)})
        if #out >= want then
          return {(i == #batch and #batch < 100) and 1 or 0, out}
        end
      end
    end
  end
  budget = budget - #batch
  if #batch < 100 then
    return {1, out}
  end
  if budget <= 0 then
    return {0, out}
  end
end
