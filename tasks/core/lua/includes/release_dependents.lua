-- release_dependents(ctx, id, kind, flow_id): called once job id ended for good (kind ok | fail |
-- revoked; a job canceled while it ran counts as revoked; flow_id: id's tr_flow_id when the caller
-- already read it, false for none, nil to read it here). Two kinds of dependents:
-- * Flow members (they have tr_pending): each counts its unfinished parents in tr_pending; this
--   decrements it and queues (or schedules) the dependent once it reaches 0. A dependent that can no
--   longer run (a parent failed under policy 'fail', or was revoked) fails or is canceled with the
--   parent's error, and the cascade goes on through a worklist, without recursion, inside the
--   caller's atomic script.
-- * Plain RQ jobs (enqueued with depends_on): as RQ's Job.dependencies_are_met decides. The
--   dependent is queued once every parent in K.dependencies(dependent) is finished (or failed, when
--   it has allow_dependency_failures), a parent whose hash is gone counting as finished; at the head
--   of its queue with enqueue_at_front. A parent that failed (without allow_dependency_failures) or
--   was canceled leaves it deferred, as RQ does.
-- The last member of a flow to end gives every member its own result TTL back (flow_unkeep).
-- Also defines flow_event(ctx, q, ev, id, task, err), an event in the queue's stream.
--
-- ctx is the caller's table of {worker = name written into results and events ('' for a producer),
-- now = unix time (number), now_text = RQ's timestamp text, maxlen = events stream bound,
-- links_checked = optional: true when the caller knows id has no dependents and no dependencies}.
-- Keys: K.job, K.dependents, K.dependencies, K.results, K.finished, K.failed, K.canceled,
-- K.scheduled, K.deferred, K.queues, K.queue, K.events, K.flow, K.flow_members (and through
-- includes K.queue_level, K.levels, K.wake, K.waiters, K.done).
-- Events: enqueued (a released dependent), failed or revoked (a dependent that will never run).
--- @include "keys"
--- @include "includes/queue_push"
--- @include "includes/notify_waiters"

local function flow_event(ctx, q, ev, id, task, err)
  redis.call('XADD', K.events .. q, 'MAXLEN', '~', ctx.maxlen, '*', 'event', ev, 'job', id, 'task', task,
    'worker', ctx.worker, 'ms', 0, 'error', err)
end

-- Nobody will read this finished job's result any more: give it back its own result TTL.
local function flow_unkeep(id, now)
  local jkey = K.job .. id
  local f = redis.call('HMGET', jkey, 'status', 'tr_keep_s', 'origin')
  if f[1] ~= 'finished' or not f[2] then return end
  local keep, rkey, dkey = tonumber(f[2]), K.results .. id, K.dependents(id)
  redis.call('HDEL', jkey, 'tr_keep_s')
  redis.call('HSET', jkey, 'result_ttl', keep)
  if keep == 0 then
    redis.call('DEL', jkey, rkey, dkey)
    redis.call('ZREM', K.finished .. f[3], id)
  elseif keep > 0 then
    redis.call('EXPIRE', jkey, keep)
    redis.call('EXPIRE', rkey, keep)
    redis.call('EXPIRE', dkey, keep)
    redis.call('ZADD', K.finished .. f[3], 'XX', now + keep, id)
  end
end

-- A member ended for good: the last member of its flow to end gives every member its own TTL back.
local function flow_member_done(id, now, fid)
  local jkey = K.job .. id
  if fid == nil then fid = redis.call('HGET', jkey, 'tr_flow_id') end
  if not fid or redis.call('HSETNX', jkey, 'tr_flow_done', '1') == 0 then return end
  if redis.call('DECR', K.flow .. fid) <= 0 then
    for _, member in ipairs(redis.call('SMEMBERS', K.flow_members(fid))) do
      flow_unkeep(member, now)
    end
    redis.call('DEL', K.flow .. fid, K.flow_members(fid))
  end
end

-- All parents are done: move the dependent from the deferred registry to its queue (or schedule).
local function flow_release(ctx, d, q)
  local now, now_text = ctx.now, ctx.now_text
  local djkey = K.job .. d
  redis.call('ZREM', K.deferred .. q, d)
  redis.call('SADD', K.queues, K.queue .. q)
  local delay = tonumber(redis.call('HGET', djkey, 'tr_countdown_s') or '0') or 0
  if delay > 0 then
    redis.call('HSET', djkey, 'status', 'scheduled')
    redis.call('ZADD', K.scheduled .. q, now + delay, d)
  else
    make_ready(q, d, now_text)
  end
  flow_event(ctx, q, 'enqueued', d, redis.call('HGET', djkey, 'tr_task') or '', '')
end

-- A plain RQ dependent d of parent p, which ended as pkind: are all of d's parents done as RQ's
-- Job.dependencies_are_met requires (finished, or failed when d allows failures; gone counts as done)?
local function rq_dependencies_met(d, p, pkind, allow)
  if pkind == 'revoked' or (pkind == 'fail' and not allow) then return false end
  for _, other in ipairs(redis.call('SMEMBERS', K.dependencies(d))) do
    if other ~= p then
      local status = redis.call('HGET', K.job .. other, 'status')
      if status and status ~= 'finished' and not (allow and status == 'failed') then return false end
    end
  end
  return true
end

-- A plain RQ dependent enqueued with Dependency(enqueue_at_front=True): to the head of its queue, as RQ
-- puts it.
local function rq_release_at_front(ctx, d, q)
  redis.call('ZREM', K.deferred .. q, d)
  redis.call('SADD', K.queues, K.queue .. q)
  redis.call('HSET', K.job .. d, 'status', 'queued', 'enqueued_at', ctx.now_text)
  push_front(q, d)
  wake(q)
  flow_event(ctx, q, 'enqueued', d, '', '')
end

-- A parent failed (policy 'fail') or was revoked: the dependent will never run. It fails with the
-- parent's error and traceback, or is canceled with it.
local function flow_stop(ctx, d, cause, ckind)
  local now, now_text = ctx.now, ctx.now_text
  local djkey = K.job .. d
  local f = redis.call('HMGET', djkey, 'origin', 'failure_ttl', 'tr_task')
  local q, ttl, task = f[1] or 'default', tonumber(f[2]) or 604800, f[3] or ''
  if ttl <= 0 then ttl = 604800 end
  redis.call('ZREM', K.deferred .. q, d)
  local ev, etype = 'revoked', ''
  if ckind == 'revoked' then
    redis.call('HSET', djkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZADD', K.canceled .. q, now + ttl, d)
  else
    local c = redis.call('HMGET', K.job .. cause, 'tr_exc_type', 'tr_exc_message', 'tr_task')
    etype = c[1] or 'TaskFailed'
    local msg = 'not run because ' .. (c[3] or 'job') .. ' ' .. cause .. ' failed: ' .. etype .. ': ' .. (c[2] or '')
    redis.call('HSET', djkey, 'status', 'failed', 'ended_at', now_text, 'tr_exc_type', etype,
      'tr_exc_message', string.sub(msg, 1, 2000))
    local exc, last = '', redis.call('XREVRANGE', K.results .. cause, '+', '-', 'COUNT', 1)
    if last[1] then
      local kv = last[1][2]
      for j = 1, #kv, 2 do if kv[j] == 'exc_string' then exc = kv[j + 1] end end
    end
    redis.call('XADD', K.results .. d, 'MAXLEN', '10', '*', 'type', '2', 'worker_name', ctx.worker, 'exc_string', exc)
    redis.call('EXPIRE', K.results .. d, ttl)
    redis.call('ZADD', K.failed .. q, now + ttl, d)
    ev = 'failed'
  end
  redis.call('EXPIRE', djkey, ttl)
  notify_waiters(d)
  flow_event(ctx, q, ev, d, task, etype)
end

-- Flow member d of parent cur (which ended as ckind), status and fields f: count cur as done, or
-- stop d; a stopped d goes onto the worklist so that its own dependents are handled too.
local function flow_dependent(ctx, d, f, cur, ckind, work, kinds)
  if f[1] == 'canceled' and not f[4] then
    -- revoked while it waited by something that did not cascade (AsyncResult.revoke): do it now
    redis.call('ZREM', K.deferred .. (f[3] or 'default'), d)
    work[#work + 1] = d
    kinds[#kinds + 1] = 'revoked'
  elseif f[1] == 'deferred' then
    if ckind ~= 'ok' and (f[2] or 'fail') == 'fail' then
      flow_stop(ctx, d, cur, ckind)
      work[#work + 1] = d
      kinds[#kinds + 1] = ckind == 'revoked' and 'revoked' or 'fail'
    elseif redis.call('HINCRBY', K.job .. d, 'tr_pending', -1) <= 0 then
      flow_release(ctx, d, f[3] or 'default')
    end
  end
end

local function release_dependents(ctx, id, kind, flow_id)
  -- The caller checked that id has no dependents and no dependencies (ctx.links_checked), and it is in no flow.
  if ctx.links_checked and flow_id == false then return end
  local work, kinds, i = {id}, {kind}, 1
  while i <= #work do
    local cur, ckind = work[i], kinds[i]
    i = i + 1
    local jkey = K.job .. cur
    local fid  -- id's tr_flow_id, when the caller read it (false: it has none); nil: read it here
    if cur == id then fid = flow_id end
    flow_member_done(cur, ctx.now, fid)
    redis.call('DEL', K.dependencies(cur))
    local dkey = K.dependents(cur)
    local deps = redis.call('SMEMBERS', dkey)
    local first  -- taken once, for flow dependents only (see below)
    for _, d in ipairs(deps) do
      local f = redis.call('HMGET', K.job .. d, 'status', 'tr_policy', 'origin', 'tr_released', 'tr_pending',
        'allow_dependency_failures', 'enqueue_at_front')
      if not f[5] then
        -- A plain RQ job. No guard: it is released only while deferred, and a parent that failed
        -- leaves it waiting, so that the parent requeued (rq requeue) and finished still releases it.
        if f[1] == 'deferred' and rq_dependencies_met(d, cur, ckind, (tonumber(f[6]) or 0) ~= 0) then
          redis.call('SREM', dkey, d)
          if f[7] == '1' then
            rq_release_at_front(ctx, d, f[3] or 'default')
          else
            flow_release(ctx, d, f[3] or 'default')
          end
        end
      else
        -- tr_released guards against a second settle of the same job (a worker thought dead that was not).
        if first == nil then
          first = redis.call('EXISTS', jkey) == 0 or redis.call('HSETNX', jkey, 'tr_released', '1') == 1
        end
        if first then flow_dependent(ctx, d, f, cur, ckind, work, kinds) end
      end
    end
    if #deps > 0 then
      local ttl = redis.call('TTL', jkey)
      if ttl > 0 then redis.call('EXPIRE', dkey, ttl) end
    end
  end
end
