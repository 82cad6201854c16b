-- RQ 3's rate-limit slots (rq/rate_limit.py), released the way RQ's worker releases them (release_slot
-- after a job's outcome): a job enqueued with RateLimit(key, concurrency) holds a slot (its id in the
-- key's allowed set) while it is queued or started; RQ's producer side takes the slots.
-- rq_release_slot(ctx, id, key): RQ's release_and_enqueue. The job leaves the key's allowed set, then
--   waiting jobs (the rate_limited set, oldest first) fill the free slots up to the key's concurrency
--   (its config hash; 0 when gone): each joins the allowed set, goes to its queue (at the front when
--   its enqueue_at_front is '1'), status queued; stale entries (no hash, no origin, another status)
--   are dropped, as RQ drops them. ctx as settle's. A worker of each promoted job's queue is woken.
-- Keys: K.rq_rate, K.rq_rate_allowed, K.rq_rate_waiting, K.job, K.queue (and K.wake through wake).
--- @include "keys"
--- @include "includes/wake"

local function rq_release_slot(ctx, id, key)
  local allowed, waiting = K.rq_rate_allowed(key), K.rq_rate_waiting(key)
  redis.call('ZREM', allowed, id)
  local concurrency = tonumber(redis.call('HGET', K.rq_rate .. key, 'concurrency')) or 0
  while redis.call('ZCARD', allowed) < concurrency do
    local popped = redis.call('ZPOPMIN', waiting)
    if #popped == 0 then break end
    local next_id = popped[1]
    local f = redis.call('HMGET', K.job .. next_id, 'origin', 'status', 'enqueue_at_front')
    if f[1] and f[2] == 'rate_limited' then
      redis.call('ZADD', allowed, math.floor(ctx.now), next_id)
      redis.call(f[3] == '1' and 'LPUSH' or 'RPUSH', K.queue .. f[1], next_id)
      redis.call('HSET', K.job .. next_id, 'status', 'queued', 'enqueued_at', ctx.now_text)
      wake(f[1])
    end
  end
end
