-- push_waiting(qkey, pkey, id, prio): put a waiting job into its queue list qkey behind every job of
--   the same or a lower priority number and before every job of a higher one (prio -1 or nil: none,
--   counts as DEFAULT_PRIORITY). pkey is the queue's priority index (job id -> priority), kept only
--   while jobs with another priority wait. Plain jobs while no prioritized job waits are a single
--   RPUSH; otherwise the shorter side of the insertion point is lifted off and pushed back
--   (O(jobs on that side), where LINSERT would scan from the head).
-- make_ready(q, id, now_text): status queued, into queue q in priority order, and a wake-up token.
-- Keys: K.queue, K.prio, K.job (and K.wake through wake).
--- @include "keys"
--- @include "includes/wake"

local function push_back(qkey, cmd, items)
  local reversed = {}
  for i = #items, 1, -1 do reversed[#reversed + 1] = items[i] end
  for i = 1, #reversed, 1000 do
    redis.call(cmd, qkey, unpack(reversed, i, math.min(i + 999, #reversed)))
  end
end

local function push_waiting(qkey, pkey, id, prio)
  local p = tonumber(prio) or -1
  if p < 0 then p = DEFAULT_PRIORITY end
  if p == DEFAULT_PRIORITY and redis.call('EXISTS', pkey) == 0 then
    redis.call('RPUSH', qkey, id)
    return
  end
  local len = redis.call('LLEN', qkey)
  local pos = redis.call('ZCOUNT', pkey, '-inf', p)
  if p >= DEFAULT_PRIORITY then pos = pos + math.max(len - redis.call('ZCARD', pkey), 0) end
  if p ~= DEFAULT_PRIORITY then redis.call('ZADD', pkey, p, id) end
  if pos >= len then
    redis.call('RPUSH', qkey, id)
  elseif pos == 0 then
    redis.call('LPUSH', qkey, id)
  elseif len - pos <= pos then
    local behind = redis.call('RPOP', qkey, len - pos)
    redis.call('RPUSH', qkey, id)
    push_back(qkey, 'RPUSH', behind)
  else
    local ahead = redis.call('LPOP', qkey, pos)
    redis.call('LPUSH', qkey, id)
    push_back(qkey, 'LPUSH', ahead)
  end
end

local function make_ready(q, id, now_text)
  local jkey = K.job .. id
  redis.call('HSET', jkey, 'status', 'queued', 'enqueued_at', now_text)
  push_waiting(K.queue .. q, K.prio .. q, id, redis.call('HGET', jkey, 'tr_priority'))
  wake(q)
end
