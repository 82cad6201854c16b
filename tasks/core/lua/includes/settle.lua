-- settle(ctx, id, q, kind, payload, ttl, retry_at, exc_type, exc_msg, duration_ms, task, bucket): record
-- how one claimed job ended, as RQ records it (job hash status and times, the results stream, the
-- finished/failed/scheduled/canceled registries), plus taskrail's statistics and event. Drops the
-- job from the started registry and gives back its concurrency slot first; a job whose hash is gone
-- stops there. kind:
--   ok       finished; payload is the encoded return value ('' for none); ttl its result TTL
--            (0: delete now, -1: keep)
--   fail     failed; payload is the encoded traceback; ttl the failure TTL
--   stopped  stopped by RQ's stop-job command: as fail (failed registry, a failure result), status
--            stopped, as RQ records it; its dependents are treated as a revoked job's
--   retry    another attempt at retry_at (now or earlier: queued again at once)
--   requeue  back to the front of its queue (exc_type 'stalled' counts a stall; the event is
--            exc_type, or 'requeued')
--   revoked  canceled; ttl the failure TTL
-- bucket, when not '', is the duration-histogram field of the task's statistics to count.
-- Outcomes that end the job for good also free its unique key, notify waiters and release its
-- dependents (release_dependents); a job canceled while it ran (its status says so; RQ's
-- Job.cancel does not stop it) releases them as a canceled job, whatever its outcome, as RQ does.
--
-- ctx is the caller's table of {worker = the worker that ran the job, now = unix time (number),
-- now_text = RQ's timestamp text, maxlen = events stream bound, minute = statistics minute (now // 60)}.
-- Keys: K.job, K.wip, K.results, K.finished, K.failed, K.scheduled, K.canceled, K.queue, K.stats,
-- K.taskstats, K.tasks, K.revoke (and through includes K.wake, K.prio, K.waiters, K.done and the flow keys).
-- Events: completed | failed | stopped | retried | requeued (or exc_type) | revoked, with job, task, worker,
-- ms and error.
--- @include "keys"
--- @include "includes/queue_push"
--- @include "includes/release_slot"
--- @include "includes/notify_waiters"
--- @include "includes/release_dependents"

local function settle(ctx, id, q, kind, payload, ttl, retry_at, exc_type, exc_msg, duration_ms, task, bucket)
  local worker, now, now_text = ctx.worker, ctx.now, ctx.now_text
  local jkey = K.job .. id
  redis.call('ZREM', K.wip .. q, id .. ':' .. worker)
  release_slot(id, q)
  if redis.call('EXISTS', jkey) == 0 then return end
  -- Canceled while it ran (RQ's Job.cancel) or stopped: its dependents are released as a canceled job's.
  local parent_kind = redis.call('HGET', jkey, 'status') == 'canceled' and 'revoked' or kind
  if kind == 'stopped' then parent_kind = 'revoked' end
  local ev = kind
  ttl = tonumber(ttl)
  local stats = K.stats(q, ctx.minute)
  local tstats = K.taskstats .. task
  if kind == 'ok' then
    redis.call('HSET', jkey, 'status', 'finished', 'ended_at', now_text)
    redis.call('HDEL', jkey, 'tr_exc_type', 'tr_exc_message')
    local rkey = K.results .. id
    if payload ~= '' then
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', worker, 'return_value', payload)
    else
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', worker)
    end
    if ttl == 0 then
      redis.call('DEL', jkey, rkey)
    elseif ttl > 0 then
      redis.call('ZADD', K.finished .. q, now + ttl, id)
      redis.call('EXPIRE', jkey, ttl)
      redis.call('EXPIRE', rkey, ttl)
    else
      redis.call('ZADD', K.finished .. q, '+inf', id)
    end
    redis.call('HINCRBY', stats, 'completed', 1)
    redis.call('HINCRBY', tstats, 'completed', 1)
    ev = 'completed'
  elseif kind == 'fail' or kind == 'stopped' then
    local rkey = K.results .. id
    local status = kind == 'stopped' and 'stopped' or 'failed'
    redis.call('HSET', jkey, 'status', status, 'ended_at', now_text, 'tr_exc_type', exc_type, 'tr_exc_message', exc_msg)
    redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '2', 'worker_name', worker, 'exc_string', payload)
    redis.call('ZADD', K.failed .. q, now + ttl, id)
    redis.call('EXPIRE', jkey, ttl)
    redis.call('EXPIRE', rkey, ttl)
    redis.call('HINCRBY', stats, 'failed', 1)
    redis.call('HINCRBY', tstats, 'failed', 1)
    ev = status
  elseif kind == 'retry' then
    redis.call('HINCRBY', jkey, 'tr_retries', 1)
    redis.call('HSET', jkey, 'tr_exc_type', exc_type, 'tr_exc_message', exc_msg)
    redis.call('XADD', K.results .. id, 'MAXLEN', '10', '*', 'type', '4', 'worker_name', worker, 'exc_string', payload)
    if tonumber(retry_at) > now then
      redis.call('HSET', jkey, 'status', 'scheduled')
      redis.call('ZADD', K.scheduled .. q, retry_at, id)
    else
      make_ready(q, id, now_text)
    end
    redis.call('HINCRBY', tstats, 'retried', 1)
    ev = 'retried'
  elseif kind == 'requeue' then
    if exc_type == 'stalled' then
      redis.call('HINCRBY', jkey, 'tr_stalls', 1)
      task = redis.call('HGET', jkey, 'tr_task') or task  -- a dead work-horse's outcome names no task
      redis.call('HINCRBY', K.taskstats .. task, 'stalled', 1)  -- as reap counts a dead worker's jobs
    end
    redis.call('HSET', jkey, 'status', 'queued')
    redis.call('LPUSH', K.queue .. q, id)
    wake(q)
    ev = exc_type ~= '' and exc_type or 'requeued'
  elseif kind == 'revoked' then
    redis.call('HSET', jkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZADD', K.canceled .. q, now + ttl, id)
    redis.call('DEL', K.revoke .. id)
    ev = 'revoked'
  end
  if bucket ~= '' then
    redis.call('HINCRBY', tstats, bucket, 1)
    redis.call('HINCRBY', tstats, 'sum_us', math.floor(tonumber(duration_ms) * 1000))
  end
  redis.call('EXPIRE', stats, 7200)
  if redis.call('EXISTS', K.taskstats .. task) == 1 then redis.call('SADD', K.tasks, task) end  -- metrics' index
  if kind ~= 'retry' and kind ~= 'requeue' then
    local ukey = redis.call('HGET', jkey, 'tr_unique')
    if ukey and redis.call('HGET', jkey, 'tr_unique_mode') ~= 'throttle' and redis.call('GET', ukey) == id then
      redis.call('DEL', ukey)
    end
    notify_waiters(id)
    release_dependents(ctx, id, parent_kind)
  end
  redis.call('XADD', K.events .. q, 'MAXLEN', '~', ctx.maxlen, '*', 'event', ev, 'job', id, 'task', task,
    'worker', worker, 'ms', duration_ms, 'error', exc_type)
end
