-- promote: move due jobs from RQ's scheduled registries into their queues. Atomic, so it fires each
-- job once however many processes run it; priorities keep their order. As RQ's scheduler
-- (rq/scheduler.py): a job RQ's Job.should_enqueue_at_front says so of (enqueue_at_front_on_retry
-- once it ran, or enqueue_at_front) goes to the front of its queue, and a job of RQ's RateLimit waits
-- for a slot of its key (includes/rq_rate_limit), as Queue._enqueue_rate_limited_job.
-- It also drops the expired entries of each queue's finished and failed registries (scored by when the job
-- expires), at most `limit` per registry and call: RQ's worker does that every 10 minutes (clean_registries);
-- taskrail's worker runs this on every maintenance tick, so a registry never outgrows its jobs' TTL.
-- KEYS     queue names (not keys)
-- ARGV     now, now_text, limit (jobs per queue and call)
-- Reply    how many jobs moved (into a queue or a rate limit's waiting set)
-- Events   none
-- Keys     K.scheduled, K.job, K.queues, K.queue, K.finished, K.failed (and through includes K.queue_level, K.levels, K.wake, K.rq_rate*)
--- @include "keys"
--- @include "includes/queue_push"
--- @include "includes/rq_rate_limit"

local ctx = {now = tonumber(ARGV[1]), now_text = ARGV[2]}

local function drop_expired(registry)
  local n = redis.call('ZCOUNT', registry, '-inf', '(' .. ARGV[1])  -- O(log N): only the expired head is touched
  if n > 0 then redis.call('ZREMRANGEBYRANK', registry, 0, math.min(n, tonumber(ARGV[3])) - 1) end
end

local moved = 0
for _, q in ipairs(KEYS) do
  drop_expired(K.finished .. q)
  drop_expired(K.failed .. q)
  local due = redis.call('ZRANGEBYSCORE', K.scheduled .. q, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(due) do
    redis.call('ZREM', K.scheduled .. q, id)
    local f = redis.call('HMGET', K.job .. id, 'status', 'enqueue_at_front_on_retry', 'ended_at', 'enqueue_at_front',
      'rate_limit_key', 'rate_limit_concurrency')
    if f[1] or redis.call('EXISTS', K.job .. id) == 1 then
      local front = (f[2] == '1' and f[3] and f[3] ~= '') or f[4] == '1'
      local concurrency = tonumber(f[6]) or 0
      if f[5] and f[5] ~= '' and concurrency > 0 then
        rq_wait_for_slot(ctx, id, q, f[5], concurrency, front)
      elseif front then
        redis.call('HSET', K.job .. id, 'status', 'queued', 'enqueued_at', ARGV[2])
        push_front(q, id)
        wake(q)
      else
        make_ready(q, id, ARGV[2])
      end
      redis.call('SADD', K.queues, K.queue .. q)
      moved = moved + 1
    end
  end
end
return moved
