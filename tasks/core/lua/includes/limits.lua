-- Sliding-window rate limits and concurrency caps for the claim command, on the server's clock.
-- window_room(key, limit, period): how many more starts fit in key's window now; when none,
--   waits[key] is the number of seconds until the next one does.
-- window_take(key, period, member): count one start in the window.
-- slot_room(key, cap): free concurrency slots; members whose job is no longer running (deleted or
--   settled without release) are pruned when the cap looks full.
-- slot_take(key, id, jkey): take a slot for job id and note it in its hash (tr_slot, read by
--   release_slot).
-- Results are memoised per key in room for the rest of the call.
--
-- Locals the including command declares before the include line: snow (server time, seconds),
-- room and waits (tables, empty at first).
-- Keys: K.job (window and slot keys are passed in).
--- @include "keys"

local function window_room(key, limit, period)
  local r = room[key]
  if r ~= nil then return r end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', snow - period)
  local n = redis.call('ZCARD', key)
  r = limit - n
  if r <= 0 then
    r = 0
    local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    waits[key] = math.max(tonumber(e[2]) + period - snow, 0.001)
  end
  room[key] = r
  return r
end

local function window_take(key, period, member)
  room[key] = room[key] - 1
  redis.call('ZADD', key, snow, member)
  redis.call('PEXPIRE', key, math.ceil(period * 1000) + 1000)
end

local function slot_room(key, cap)
  local r = room[key]
  if r ~= nil then return r end
  local n = redis.call('ZCARD', key)
  if n >= cap then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if redis.call('HGET', K.job .. m, 'status') ~= 'started' then redis.call('ZREM', key, m) end
    end
    n = redis.call('ZCARD', key)
  end
  r = cap - n
  room[key] = r
  return r
end

local function slot_take(key, id, jkey)
  room[key] = room[key] - 1
  redis.call('ZADD', key, snow, id)
  redis.call('HSET', jkey, 'tr_slot', key)
end
