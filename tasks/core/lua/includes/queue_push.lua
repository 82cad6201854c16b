-- Priorities inside a queue, O(1) per job at any backlog. Queue q's waiting jobs of the default
-- priority (DEFAULT_PRIORITY, also every job without one) are RQ's list K.queue .. q; those of any
-- other priority p (0-9) are the list K.queue_level(q, p), an RQ queue of its own named '<q>:p<p>'
-- (registered in K.queues, so RQ's tools list and count it). Each list is FIFO. K.levels .. q (a
-- sorted set, member and score the priority) names the other priorities whose list may hold jobs;
-- it exists only while one does. Claim takes the lists in priority order (queue_lists).
-- queue_list(q, prio): the list key of priority prio (-1, nil or not a number: the default) and that
--   priority's number when it is not the default.
-- push_waiting(q, id, prio): to the back of its priority's list.
-- push_front(q, id): to the front of its priority's list (read from the job): a job put back, or
--   RQ's enqueue_at_front.
-- make_ready(q, id, now_text): status queued, to the back of its list, and a wake-up token.
-- queue_lists(q): the lists of q that may hold jobs, in run order, as {key, level} (level nil for
--   the default list): one ZRANGE, whatever the backlog.
-- Keys: K.queue, K.queue_level, K.levels, K.queues, K.job (and K.wake through wake).
--- @include "keys"
--- @include "includes/wake"

local function queue_list(q, prio)
  local p = tonumber(prio)
  if not p or p < 0 or p == DEFAULT_PRIORITY then return K.queue .. q, nil end
  return K.queue_level(q, p), p
end

local function push_to(cmd, q, id, prio)
  local key, level = queue_list(q, prio)
  if redis.call(cmd, key, id) == 1 and level then redis.call('SADD', K.queues, key) end
  if level then redis.call('ZADD', K.levels .. q, level, level) end
end

local function push_waiting(q, id, prio)
  push_to('RPUSH', q, id, prio)
end

local function push_front(q, id)
  push_to('LPUSH', q, id, redis.call('HGET', K.job .. id, 'tr_priority'))
end

local function make_ready(q, id, now_text)
  local jkey = K.job .. id
  redis.call('HSET', jkey, 'status', 'queued', 'enqueued_at', now_text)
  push_waiting(q, id, redis.call('HGET', jkey, 'tr_priority'))
  wake(q)
end

local function queue_lists(q)
  local lists, base = {}, false
  for _, p in ipairs(redis.call('ZRANGE', K.levels .. q, 0, -1)) do
    local n = tonumber(p)
    if n > DEFAULT_PRIORITY and not base then
      lists[#lists + 1] = {key = K.queue .. q}
      base = true
    end
    lists[#lists + 1] = {key = K.queue_level(q, n), level = p}
  end
  if not base then lists[#lists + 1] = {key = K.queue .. q} end
  return lists
end

-- The next waiting id of q and the list it came from ({key, level}), or nil; cur = {lists, at} is
-- the caller's cursor over queue_lists(q). A priority's list found empty leaves K.levels .. q.
local function pop_next(q, cur)
  while true do
    local list = cur.lists[cur.at]
    local id = redis.call('LPOP', list.key)
    if id then return id, list end
    if list.level then redis.call('ZREM', K.levels .. q, list.level) end
    if cur.at >= #cur.lists then return nil end
    cur.at = cur.at + 1
  end
end

-- Put popped ids back at the front of the lists they came from (aside: {id, list} in pop order).
local function put_back(q, aside)
  for i = #aside, 1, -1 do
    local id, list = aside[i][1], aside[i][2]
    redis.call('LPUSH', list.key, id)
    if list.level then redis.call('ZADD', K.levels .. q, list.level, list.level) end
  end
end
