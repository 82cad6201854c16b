-- RQ's own Retry, as RQ 3's worker applies it (rq/job.py Job.retry, Job._handle_retry_result and
-- rq/worker/base.py handle_job_retry), for settle's two kinds:
--   rq_retry     the task raised, and the job was enqueued with Retry(max, interval): RQ's Job.retry.
--                retries_left - 1; the wait is retry_intervals[max(#intervals - retries_left, 0)] (0-based,
--                0 when there are none); no result entry (RQ writes none for a retried exception).
--   rq_returned  the task returned a Retry; payload is its JSON {max, intervals, at_front}. RQ's
--                handle_job_retry: once number_of_retries >= max the job fails (status failed, in the
--                failed registry for the failure TTL, a MAX_RETRIES_EXCEEDED result); otherwise a
--                RETRIED result, number_of_retries + 1, enqueue_at_front_on_retry |= at_front and the
--                wait is intervals[min(number_of_retries, #intervals - 1)].
-- A wait above 0 schedules the job (status scheduled, in RQ's scheduled registry at now + wait), as
-- RQ's queue.schedule_job; otherwise it is queued again at once, at the front of its queue when the
-- job's enqueue_at_front_on_retry is set (RQ's _enqueue_job(at_front=...)).
-- rq_left(jkey, field): whether the job still has RQ retries or repeats (retries_left or repeats_left above 0).
-- rq_retry(ctx, id, q, kind, payload, ttl): apply one; returns 'retried', or 'failed' for a returned
--   Retry past its max (the caller then ends the job for good). ctx as settle's, plus token (the
--   claim's attempt number, which names RQ's execution in the result entry).
-- rq_repeat(ctx, id, q, payload, ttl): a success of a job with RQ Repeat left (repeats_left above 0), as
--   RQ's handle_job_success and Repeat.schedule: unless the result TTL is 0, a SUCCESSFUL result
--   (payload, the encoded return value) and the finished registry, but the job hash does not expire;
--   then repeats_left - 1 and the wait repeat_intervals[1], the list losing its head while it has more
--   than one; queued again at the back (wait 0) or scheduled.
-- settle_rq(ctx, id, q, kind, payload, ttl, exc_type, exc_msg, ms, stats, task, canceled): settle's
--   branch for these kinds, with the queue's statistics hash and the task's name; returns the event and whether the job ended for
--   good (a returned Retry past its max). A repeat releases the job's dependents (as a canceled job's
--   when canceled is true), as RQ does on each success.
-- Keys: K.job, K.finished, K.results, K.failed, K.scheduled, K.queue (and through includes K.queue_level, K.levels, K.wake
-- and those of notify_waiters and release_dependents).
--- @include "keys"
--- @include "includes/queue_push"
--- @include "includes/notify_waiters"
--- @include "includes/release_dependents"
--- @include "includes/task_stats"

-- RQ's result value for a Retry under the JSON serializer: json.dumps of RQ's
-- UNSERIALIZABLE_RETURN_VALUE_PAYLOAD ('Unserializable return value'), base64-encoded.
local RQ_UNSERIALIZABLE = 'IlVuc2VyaWFsaXphYmxlIHJldHVybiB2YWx1ZSI='

local function rq_left(jkey, field)
  return (tonumber(redis.call('HGET', jkey, field)) or 0) > 0
end

-- The job's retry_intervals or repeat_intervals (a JSON list RQ writes), or {} when absent or unreadable.
local function rq_intervals(jkey, field)
  local raw = redis.call('HGET', jkey, field)
  if not raw then return {} end
  local ok, list = pcall(cjson.decode, raw)
  if ok and type(list) == 'table' then return list end
  return {}
end

local function rq_result(ctx, id, type_, ms)
  local now = ctx.now
  redis.call('XADD', K.results .. id, 'MAXLEN', '10', '*', 'type', type_, 'worker_name', ctx.worker,
    'return_value', RQ_UNSERIALIZABLE, 'execution_id', ctx.worker .. ':' .. (ctx.token or 0),
    'execution_started_at', tostring(now - (tonumber(ms) or 0) / 1000), 'execution_ended_at', tostring(now))
end

local function rq_requeue(ctx, id, q, jkey, wait)
  redis.call('HSET', jkey, 'ended_at', ctx.now_text)
  if wait > 0 then
    redis.call('HSET', jkey, 'status', 'scheduled')
    redis.call('ZADD', K.scheduled .. q, ctx.now + wait, id)
  elseif redis.call('HGET', jkey, 'enqueue_at_front_on_retry') == '1' then
    redis.call('HSET', jkey, 'status', 'queued', 'enqueued_at', ctx.now_text)
    push_front(q, id)
    wake(q)
  else
    make_ready(q, id, ctx.now_text)
  end
end

local function rq_retry(ctx, id, q, kind, payload, ttl, ms)
  local jkey = K.job .. id
  if kind == 'rq_retry' then
    local left = tonumber(redis.call('HGET', jkey, 'retries_left'))
    local intervals = rq_intervals(jkey, 'retry_intervals')
    local wait = tonumber(intervals[math.max(#intervals - left, 0) + 1]) or 0
    redis.call('HSET', jkey, 'retries_left', left - 1)
    rq_requeue(ctx, id, q, jkey, wait)
    return 'retried'
  end
  local spec = cjson.decode(payload)  -- checked by finish.lua before its first write
  local done = tonumber(redis.call('HGET', jkey, 'number_of_retries')) or 0
  if done > 0 and done >= spec.max then
    redis.call('HSET', jkey, 'status', 'failed', 'ended_at', ctx.now_text)
    redis.call('ZADD', K.failed .. q, ctx.now + ttl, id)
    rq_result(ctx, id, '5', ms)
    redis.call('EXPIRE', jkey, ttl)
    redis.call('EXPIRE', K.results .. id, ttl)
    return 'failed'
  end
  rq_result(ctx, id, '4', ms)
  local intervals = spec.intervals
  local wait = #intervals > 0 and tonumber(intervals[math.min(done, #intervals - 1) + 1]) or 0
  redis.call('HSET', jkey, 'number_of_retries', done + 1)
  if spec.at_front then redis.call('HSET', jkey, 'enqueue_at_front_on_retry', '1') end
  rq_requeue(ctx, id, q, jkey, wait)
  return 'retried'
end

local function rq_repeat(ctx, id, q, payload, ttl)
  local jkey, rkey = K.job .. id, K.results .. id
  redis.call('HSET', jkey, 'status', 'finished', 'ended_at', ctx.now_text)
  redis.call('HDEL', jkey, 'tr_exc_type', 'tr_exc_message')
  if ttl ~= 0 then
    if payload ~= '' then
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', ctx.worker, 'return_value', payload)
    else
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', ctx.worker)
    end
    if ttl > 0 then redis.call('EXPIRE', rkey, ttl) end
    redis.call('ZADD', K.finished .. q, ttl > 0 and ctx.now + ttl or '+inf', id)
  end
  local left = tonumber(redis.call('HGET', jkey, 'repeats_left'))
  local intervals = rq_intervals(jkey, 'repeat_intervals')
  local wait = tonumber(intervals[1]) or 0
  if #intervals > 1 then
    table.remove(intervals, 1)
    redis.call('HSET', jkey, 'repeat_intervals', cjson.encode(intervals))
  end
  redis.call('HSET', jkey, 'repeats_left', left - 1)
  if wait > 0 then
    redis.call('HSET', jkey, 'status', 'scheduled')
    redis.call('ZADD', K.scheduled .. q, ctx.now + wait, id)
  else
    make_ready(q, id, ctx.now_text)
  end
end

local function settle_rq(ctx, id, q, kind, payload, ttl, exc_type, exc_msg, ms, stats, task, canceled)
  if kind == 'rq_repeat' then
    rq_repeat(ctx, id, q, payload, ttl)
    tally_incr(ctx.tally, stats, 'completed', 1)
    count_task(task, 'completed', ctx)
    notify_waiters(id)
    release_dependents(ctx, id, canceled and 'revoked' or 'ok')
    return 'completed', false
  end
  if kind == 'rq_retry' then redis.call('HSET', K.job .. id, 'tr_exc_type', exc_type, 'tr_exc_message', exc_msg) end
  local ev = rq_retry(ctx, id, q, kind, payload, ttl, ms)
  if ev == 'failed' then
    tally_incr(ctx.tally, stats, 'failed', 1)
    count_task(task, 'failed', ctx)
    return ev, true
  end
  count_task(task, 'retried', ctx)
  return ev, false
end
