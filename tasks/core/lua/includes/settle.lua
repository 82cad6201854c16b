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
--   rq_repeat  a success of a job with RQ's Repeat left (includes/rq_retry): as ok, then queued or
--            scheduled again (a plain ok once none is left)
--   rq_retry, rq_returned  RQ's own Retry (includes/rq_retry): a retried exception of a job enqueued
--            with retries_left (a plain failure once none is left), or a returned Retry; ttl the
--            failure TTL
-- bucket, when not '', is the duration-histogram field of the task's statistics to count.
-- A job of RQ's RateLimit gives its slot back (includes/rq_rate_limit) unless it is queued again.
-- job, when given, is settle_read(jkey, ...) as the caller already read it (finish reads the fence's
-- fields in the same call); otherwise settle reads it. Every job field settle needs comes from that
-- one read.
-- Outcomes that end the job for good also free its unique key, notify waiters and release its
-- dependents (release_dependents); a job canceled while it ran (its status says so; RQ's
-- Job.cancel does not stop it) releases them as a canceled job, whatever its outcome, as RQ does.
--
-- ctx is the caller's table of {worker = the worker that ran the job, now = unix time (number),
-- now_text = RQ's timestamp text, maxlen = events stream bound, minute = statistics minute (now // 60),
-- mark = optional: written to the job's tr_settled with its new status (finish's fence),
-- tally = optional: includes/tally's batch, which then takes the writes to keys every job of a batch
-- shares (the started registry's ZREM, the finished registry's ZADD, the statistics' counters and
-- TTL); links_checked = optional: true when the caller knows none of the batch's jobs has waiters,
-- dependents or dependencies (one EXISTS for the batch), so none is looked up per job}.
-- A job with an RQ execution record (tr_exec: the worker that wrote it, tasks/core/lua/execution.lua)
-- has it deleted here, with the job's member of the worker's execution index.
-- Keys: K.job, K.wip, K.rq_execution, K.rq_executions, K.rq_worker_executions, K.results, K.finished,
-- K.failed, K.scheduled, K.canceled, K.queue, K.stats, K.taskstats, K.revoke (and through includes K.tasks, K.rq_rate*, K.wake, K.queue_level, K.levels, K.waiters, K.done and the flow keys).
-- Events: completed | failed | stopped | retried | requeued (or exc_type) | revoked, with job, task, worker,
-- ms and error.
--- @include "keys"
--- @include "includes/queue_push"
--- @include "includes/release_slot"
--- @include "includes/notify_waiters"
--- @include "includes/release_dependents"
--- @include "includes/task_stats"
--- @include "includes/tally"
--- @include "includes/rq_retry"
--- @include "includes/rq_rate_limit"

local SETTLE_FIELDS = {'status', 'tr_slot', 'tr_unique', 'tr_unique_mode', 'tr_exc_type', 'tr_flow_id',
  'rate_limit_key', 'rate_limit_concurrency', 'tr_exec'}

-- The fields settle reads plus a caller's extra ones, as one list: built once per call of the script,
-- not once per job.
local function settle_fields(extra)
  local names = {unpack(SETTLE_FIELDS)}
  for _, name in ipairs(extra or {}) do names[#names + 1] = name end
  return names
end

-- The job's fields named by names (settle_fields; settle's own when nil) in one HMGET: a table by field
-- name, false for a field the job lacks; status is false too when the job hash is gone.
local function settle_read(jkey, names)
  names = names or SETTLE_FIELDS
  local values = redis.call('HMGET', jkey, unpack(names))
  local job = {}
  for i, name in ipairs(names) do job[name] = values[i] end
  return job
end

-- HSET of the job's new status (and more fields), with finish's settled mark when ctx has one.
local function set_status(ctx, jkey, ...)
  if ctx.mark then
    redis.call('HSET', jkey, 'tr_settled', ctx.mark, ...)
  else
    redis.call('HSET', jkey, ...)
  end
end

-- The fields of a finished run's times: started_at and ended_at as the worker measured them (finish
-- passes them per job in ctx.started, ctx.ended), else ended_at at the settle's time (recovery: a job's
-- started_at stays its claim's). Always three HSET pairs' worth: the fallback names ended_at twice.
local function run_times(ctx)
  if ctx.started and ctx.started ~= '' then return 'started_at', ctx.started, ctx.ended end
  return 'ended_at', ctx.now_text, ctx.now_text
end

-- RQ's cleanup_execution, for a job whose execution record worker w wrote.
local function drop_execution(jkey, id, w)
  redis.call('DEL', K.rq_execution(id, w))
  redis.call('ZREM', K.rq_executions .. id, w)
  redis.call('SREM', K.rq_worker_executions(w), id .. ':' .. w)
  redis.call('HDEL', jkey, 'tr_exec')
end

local function settle(ctx, id, q, kind, payload, ttl, retry_at, exc_type, exc_msg, duration_ms, task, bucket, job)
  local worker, now, now_text = ctx.worker, ctx.now, ctx.now_text
  local jkey = K.job .. id
  job = job or settle_read(jkey)
  local t = ctx.tally
  tally_zrem(t, K.wip .. q, id .. ':' .. worker)
  if job.tr_exec then drop_execution(jkey, id, job.tr_exec) end
  release_slot(id, q, job.tr_slot)
  -- Every job taskrail or RQ writes has a status; only a hash gone (or made by hand) lacks one.
  if not job.status and redis.call('EXISTS', jkey) == 0 then return end
  local canceled, rate_key = job.status == 'canceled', job.rate_limit_key
  local concurrency = tonumber(job.rate_limit_concurrency)
  if not rate_key or rate_key == '' or not concurrency or concurrency == 0 then rate_key = nil end
  if kind == 'rq_retry' and not rq_left(jkey, 'retries_left') then kind = 'fail' end  -- none left since its claim
  if kind == 'rq_repeat' and not rq_left(jkey, 'repeats_left') then kind = 'ok' end
  local ev, final = kind, kind ~= 'retry' and kind ~= 'requeue'
  ttl = tonumber(ttl)
  local stats = K.stats(q, ctx.minute)
  local tstats = K.taskstats .. task
  if kind == 'ok' then
    local started_field, started, ended = run_times(ctx)
    set_status(ctx, jkey, 'status', 'finished', started_field, started, 'ended_at', ended)
    if job.tr_exc_type then redis.call('HDEL', jkey, 'tr_exc_type', 'tr_exc_message') end
    local rkey = K.results .. id
    if payload ~= '' then
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', worker, 'return_value', payload)
    else
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', worker)
    end
    if ttl == 0 then
      redis.call('DEL', jkey, rkey)
    else
      -- A flow member's registry entry may be changed later in this script (flow_unkeep's ZADD XX): now.
      local reg = t
      if job.tr_flow_id then reg = nil end
      if ttl > 0 then
        tally_zadd(reg, K.finished .. q, now + ttl, id)
        redis.call('EXPIRE', jkey, ttl)
        redis.call('EXPIRE', rkey, ttl)
      else
        tally_zadd(reg, K.finished .. q, '+inf', id)
      end
    end
    tally_incr(t, stats, 'completed', 1)
    count_task(task, 'completed', ctx)
    ev = 'completed'
  elseif kind == 'fail' or kind == 'stopped' then
    local rkey = K.results .. id
    local status = kind == 'stopped' and 'stopped' or 'failed'
    local started_field, started, ended = run_times(ctx)
    set_status(ctx, jkey, 'status', status, started_field, started, 'ended_at', ended, 'tr_exc_type', exc_type,
      'tr_exc_message', exc_msg)
    redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '2', 'worker_name', worker, 'exc_string', payload)
    redis.call('ZADD', K.failed .. q, now + ttl, id)
    redis.call('EXPIRE', jkey, ttl)
    redis.call('EXPIRE', rkey, ttl)
    tally_incr(t, stats, 'failed', 1)
    count_task(task, 'failed', ctx)
    ev = status
  elseif kind == 'retry' then
    redis.call('HINCRBY', jkey, 'tr_retries', 1)
    set_status(ctx, jkey, 'tr_exc_type', exc_type, 'tr_exc_message', exc_msg)
    redis.call('XADD', K.results .. id, 'MAXLEN', '10', '*', 'type', '4', 'worker_name', worker, 'exc_string', payload)
    if tonumber(retry_at) > now then
      redis.call('HSET', jkey, 'status', 'scheduled')
      redis.call('ZADD', K.scheduled .. q, retry_at, id)
    else
      make_ready(q, id, now_text)
    end
    count_task(task, 'retried', ctx)
    ev = 'retried'
  elseif kind == 'requeue' then
    if exc_type == 'stalled' then
      redis.call('HINCRBY', jkey, 'tr_stalls', 1)
      task = redis.call('HGET', jkey, 'tr_task') or task  -- a dead work-horse's outcome names no task
      count_task(task, 'stalled', ctx)  -- as reap counts a dead worker's jobs
    end
    set_status(ctx, jkey, 'status', 'queued')
    push_front(q, id)
    wake(q)
    ev = exc_type ~= '' and exc_type or 'requeued'
  elseif kind == 'rq_retry' or kind == 'rq_returned' or kind == 'rq_repeat' then
    ev, final = settle_rq(ctx, id, q, kind, payload, ttl, exc_type, exc_msg, duration_ms, stats, task, canceled)
    if ctx.mark and redis.call('EXISTS', jkey) == 1 then redis.call('HSET', jkey, 'tr_settled', ctx.mark) end
    kind = 'fail'  -- only a returned Retry past its max ends the job here
  elseif kind == 'revoked' then
    set_status(ctx, jkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZADD', K.canceled .. q, now + ttl, id)
    redis.call('DEL', K.revoke .. id)
    ev = 'revoked'
  end
  if bucket ~= '' then
    tally_incr(t, tstats, bucket, 1)
    tally_incr(t, tstats, 'sum_us', math.floor(tonumber(duration_ms) * 1000))
  end
  tally_expire(t, stats, 7200)  -- with a tally, once per batch, after its counters
  if final then
    local ukey = job.tr_unique
    if ukey and job.tr_unique_mode ~= 'throttle' and redis.call('GET', ukey) == id then
      redis.call('DEL', ukey)
    end
    if not ctx.links_checked then notify_waiters(id) end
    -- Canceled while it ran (RQ's Job.cancel) or stopped: its dependents are released as a canceled job's.
    release_dependents(ctx, id, (canceled or kind == 'stopped') and 'revoked' or kind, job.tr_flow_id)
  end
  if rate_key then  -- RQ's release_slot: a job queued again (or still started) keeps its slot
    local status = redis.call('HGET', jkey, 'status')
    if status ~= 'queued' and status ~= 'started' then rq_release_slot(ctx, id, rate_key) end
  end
  redis.call('XADD', K.events .. q, 'MAXLEN', '~', ctx.maxlen, '*', 'event', ev, 'job', id, 'task', task,
    'worker', worker, 'ms', duration_ms, 'error', exc_type)
end
