-- move: take up to `limit` waiting jobs from the head of one queue into another, in the target's
-- priority order, keeping each job's enqueued_at (its wait goes on). Atomic per call; callers loop.
-- KEYS     source queue name, target queue name (names, not keys)
-- ARGV     limit, events maxlen
-- Reply    how many jobs moved (a job whose hash is gone is dropped from the list, not counted)
-- Events   moved (with from and to) in both queues' streams
-- Keys     K.queue, K.prio, K.job, K.queues, K.events (and through push_waiting and wake K.wake)
--- @include "keys"
--- @include "includes/queue_push"

local src, dst = KEYS[1], KEYS[2]
local limit, maxlen = tonumber(ARGV[1]), ARGV[2]
if not limit or limit < 1 then return redis.error_reply('move: limit must be a positive number') end
local moved = 0
for _ = 1, limit do
  local id = redis.call('LPOP', K.queue .. src)
  if not id then break end
  redis.call('ZREM', K.prio .. src, id)
  local jkey = K.job .. id
  if redis.call('EXISTS', jkey) == 1 then
    redis.call('HSET', jkey, 'origin', dst, 'status', 'queued')
    push_waiting(K.queue .. dst, K.prio .. dst, id, redis.call('HGET', jkey, 'tr_priority'))
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
