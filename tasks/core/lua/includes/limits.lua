-- Sliding-window rate limits and concurrency caps for the claim command, on the server's clock.
-- window_room(lim, key, limit, period): how many more starts fit in key's window now; when none,
--   lim.waits[key] is the number of seconds until the next one does.
-- window_take(lim, key, period, member): count one start in the window.
-- slot_room(lim, key, cap): free concurrency slots; members whose job is no longer running (deleted or
--   settled without release) are pruned when the cap looks full.
-- slot_take(lim, key, id, jkey): take a slot for job id and note it in its hash (tr_slot, read by
--   release_slot).
-- lim is the caller's table {snow = server time (seconds), room = {}, waits = {}}: room memoises
-- each key's free starts or slots for the rest of the call, waits the seconds until a full window
-- has room.
-- Keys: K.job (window and slot keys are passed in).
--- @include "keys"

local function window_room(lim, key, limit, period)
  local r = lim.room[key]
  if r ~= nil then return r end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', lim.snow - period)
  local n = redis.call('ZCARD', key)
  r = limit - n
  if r <= 0 then
    r = 0
    local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    lim.waits[key] = math.max(tonumber(e[2]) + period - lim.snow, 0.001)
  end
  lim.room[key] = r
  return r
end

local function window_take(lim, key, period, member)
  lim.room[key] = lim.room[key] - 1
  redis.call('ZADD', key, lim.snow, member)
  redis.call('PEXPIRE', key, math.ceil(period * 1000) + 1000)
end

local function slot_room(lim, key, cap)
  local r = lim.room[key]
  if r ~= nil then return r end
  local n = redis.call('ZCARD', key)
  if n >= cap then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if redis.call('HGET', K.job .. m, 'status') ~= 'started' then redis.call('ZREM', key, m) end
    end
    n = redis.call('ZCARD', key)
  end
  r = cap - n
  lim.room[key] = r
  return r
end

local function slot_take(lim, key, id, jkey)
  lim.room[key] = lim.room[key] - 1
  redis.call('ZADD', key, lim.snow, id)
  redis.call('HSET', jkey, 'tr_slot', key)
end
