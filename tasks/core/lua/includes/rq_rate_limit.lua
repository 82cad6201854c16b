-- RQ 3's rate-limit slots (rq/rate_limit.py), released the way RQ's worker releases them (release_slot
-- after a job's outcome): a job enqueued with RateLimit(key, concurrency) holds a slot (its id in the
-- key's allowed set) while it is queued or started; RQ's producer side takes the slots.
-- rq_fill_slots(ctx, key, concurrency): RQ's acquire_and_enqueue. Waiting jobs (the key's rate_limited
--   set, oldest first) fill the free slots up to concurrency: each joins the allowed set, goes to its
--   queue (at the front when its enqueue_at_front is '1'), status queued, and a worker of that queue
--   is woken; stale entries (no hash, no origin, another status) are dropped, as RQ drops them.
--   ctx: {now = unix time, now_text = RQ's timestamp text}.
-- rq_release_slot(ctx, id, key): RQ's release_and_enqueue. The job leaves the key's allowed set, then
--   rq_fill_slots with the key's concurrency (its config hash; 0 when gone).
-- rq_wait_for_slot(ctx, id, q, key, concurrency, front): RQ's Queue._enqueue_rate_limited_job for a job of
--   queue q due again (its scheduled retry or run): status rate_limited, in the key's waiting set (its
--   enqueue_at_front '1' when front), the key registered with its concurrency, then free slots filled.
-- Keys: K.rq_rate, K.rq_rate_keys, K.rq_rate_allowed, K.rq_rate_waiting, K.job, K.queue (and through
-- queue_push K.queue_level, K.levels, K.queues, K.wake).
--- @include "keys"
--- @include "includes/queue_push"

local function rq_fill_slots(ctx, key, concurrency)
  local allowed, waiting = K.rq_rate_allowed(key), K.rq_rate_waiting(key)
  while redis.call('ZCARD', allowed) < concurrency do
    local popped = redis.call('ZPOPMIN', waiting)
    if #popped == 0 then break end
    local next_id = popped[1]
    local f = redis.call('HMGET', K.job .. next_id, 'origin', 'status', 'enqueue_at_front', 'tr_priority')
    if f[1] and f[2] == 'rate_limited' then
      redis.call('ZADD', allowed, math.floor(ctx.now), next_id)
      if f[3] == '1' then push_front(f[1], next_id) else push_waiting(f[1], next_id, f[4]) end
      redis.call('HSET', K.job .. next_id, 'status', 'queued', 'enqueued_at', ctx.now_text)
      wake(f[1])
    end
  end
end

local function rq_release_slot(ctx, id, key)
  redis.call('ZREM', K.rq_rate_allowed(key), id)
  rq_fill_slots(ctx, key, tonumber(redis.call('HGET', K.rq_rate .. key, 'concurrency')) or 0)
end

local function rq_wait_for_slot(ctx, id, q, key, concurrency, front)
  local jkey = K.job .. id
  redis.call('HSET', jkey, 'status', 'rate_limited', 'origin', q)
  if front then redis.call('HSET', jkey, 'enqueue_at_front', '1') end
  redis.call('SADD', K.rq_rate_keys, key)
  redis.call('HSET', K.rq_rate .. key, 'concurrency', concurrency)
  redis.call('ZADD', K.rq_rate_waiting(key), math.floor(ctx.now), id)
  rq_fill_slots(ctx, key, concurrency)
end
