-- move: take up to `limit` waiting jobs from the head of one queue (in its run order: priority, then
-- arrival) into another, each to the back of its priority's list there, keeping each job's
-- enqueued_at (its wait goes on). Atomic per call; callers loop.
-- KEYS     source queue name, target queue name (names, not keys)
-- ARGV     limit, events maxlen
-- Reply    how many jobs moved (a job whose hash is gone is dropped from the list, not counted)
-- Events   moved (with from and to) in both queues' streams
-- Keys     K.queue, K.queue_level, K.levels, K.job, K.queues, K.events (and through wake K.wake)
--- @include "keys"
--- @include "includes/queue_push"

local src, dst = KEYS[1], KEYS[2]
local limit, maxlen = tonumber(ARGV[1]), ARGV[2]
if not limit or limit < 1 then return redis.error_reply('move: limit must be a positive number') end
local moved = 0
local cur = {lists = queue_lists(src), at = 1}
for _ = 1, limit do
  local id = pop_next(src, cur)
  if not id then break end
  local jkey = K.job .. id
  if redis.call('EXISTS', jkey) == 1 then
    redis.call('HSET', jkey, 'origin', dst, 'status', 'queued')
    push_waiting(dst, id, redis.call('HGET', jkey, 'tr_priority'))
    local task = redis.call('HGET', jkey, 'tr_task') or ''
    for _, q in ipairs({src, dst}) do
      redis.call('XADD', K.events .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'moved', 'job', id, 'task', task,
        'from', src, 'to', dst)
    end
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('SADD', K.queues, K.queue .. dst)
  wake(dst)
end
return moved
