"""Server-side scripts of the canvas: write a flow's jobs, release a dependent once, revoke a flow.

A flow member is an ordinary RQ job. One that waits for others is written as RQ writes a job with
``depends_on``: status ``deferred``, in ``rq:deferred:<queue>``, with ``dependency_ids`` and the set
``rq:job::<id>:dependencies`` (RQ's own spelling, double colon), and its id in every parent's
``rq:job:<parent>:dependents`` set. Release does not scan parents: the dependent counts its
unfinished parents in ``tr_pending`` and each parent's settle decrements it inside the worker's atomic
settle script, so the dependent is queued exactly once however many machines finish parents at once.

Jobs enter their queue through ``push_waiting`` (tasks/core/queues.py), so priorities hold for them too.
Every member is written with ``result_ttl`` -1 and its own TTL kept in ``tr_keep_s``; the flow counts
its members that have not ended (``taskrail:flow:<id>``), and the last to end gives every member its
own TTL back (``flow_unkeep``), so results last until the whole flow has finished, plus their TTL.
"""

from __future__ import annotations

from tasks.core.queues import QUEUE_PUSH_LUA

__all__ = ["FLOW_ENQUEUE", "FLOW_REVOKE", "RELEASE_LUA"]

# Defines release_dependents(id, kind, now, now_text) and helpers. The including script must declare
# `worker` and `maxlen` first (workers/lua.py's FINISH and REAP do; so does FLOW_REVOKE).
RELEASE_LUA = (
    QUEUE_PUSH_LUA
    + """
local function flow_notify(id)
  if redis.call('EXISTS', 'taskrail:waiters:' .. id) == 1 then
    redis.call('RPUSH', 'taskrail:done:' .. id, '1')
    redis.call('EXPIRE', 'taskrail:done:' .. id, 300)
  end
end

local function flow_event(q, ev, id, task, err)
  redis.call('XADD', 'taskrail:events:' .. q, 'MAXLEN', '~', maxlen, '*', 'event', ev, 'job', id, 'task', task,
    'worker', worker, 'ms', 0, 'error', err)
end

-- Nobody will read this finished job's result any more: give it back its own result TTL.
local function flow_unkeep(id, now)
  local jkey = 'rq:job:' .. id
  local f = redis.call('HMGET', jkey, 'status', 'tr_keep_s', 'origin')
  if f[1] ~= 'finished' or not f[2] then return end
  local keep, rkey, dkey = tonumber(f[2]), 'rq:results:' .. id, jkey .. ':dependents'
  redis.call('HDEL', jkey, 'tr_keep_s')
  redis.call('HSET', jkey, 'result_ttl', keep)
  if keep == 0 then
    redis.call('DEL', jkey, rkey, dkey)
    redis.call('ZREM', 'rq:finished:' .. f[3], id)
  elseif keep > 0 then
    redis.call('EXPIRE', jkey, keep)
    redis.call('EXPIRE', rkey, keep)
    redis.call('EXPIRE', dkey, keep)
    redis.call('ZADD', 'rq:finished:' .. f[3], 'XX', now + keep, id)
  end
end

-- A member ended for good: the last member of its flow to end gives every member its own TTL back.
local function flow_member_done(id, now)
  local jkey = 'rq:job:' .. id
  local fid = redis.call('HGET', jkey, 'tr_flow_id')
  if not fid or redis.call('HSETNX', jkey, 'tr_flow_done', '1') == 0 then return end
  if redis.call('DECR', 'taskrail:flow:' .. fid) <= 0 then
    for _, member in ipairs(redis.call('SMEMBERS', 'taskrail:flow:' .. fid .. ':members')) do
      flow_unkeep(member, now)
    end
    redis.call('DEL', 'taskrail:flow:' .. fid, 'taskrail:flow:' .. fid .. ':members')
  end
end

-- All parents are done: move the dependent from the deferred registry to its queue (or schedule).
local function flow_release(d, q, now, now_text)
  local djkey = 'rq:job:' .. d
  redis.call('ZREM', 'rq:deferred:' .. q, d)
  redis.call('SADD', 'rq:queues', 'rq:queue:' .. q)
  local delay = tonumber(redis.call('HGET', djkey, 'tr_countdown_s') or '0') or 0
  if delay > 0 then
    redis.call('HSET', djkey, 'status', 'scheduled')
    redis.call('ZADD', 'rq:scheduled:' .. q, now + delay, d)
  else
    make_ready(q, d, now_text)
  end
  flow_event(q, 'enqueued', d, redis.call('HGET', djkey, 'tr_task') or '', '')
end

-- A parent failed (policy 'fail') or was revoked: the dependent will never run. It fails with the
-- parent's error and traceback, or is canceled with it.
local function flow_stop(d, cause, ckind, now, now_text)
  local djkey = 'rq:job:' .. d
  local f = redis.call('HMGET', djkey, 'origin', 'failure_ttl', 'tr_task')
  local q, ttl, task = f[1] or 'default', tonumber(f[2]) or 604800, f[3] or ''
  if ttl <= 0 then ttl = 604800 end
  redis.call('ZREM', 'rq:deferred:' .. q, d)
  local ev, etype = 'revoked', ''
  if ckind == 'revoked' then
    redis.call('HSET', djkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZADD', 'rq:canceled:' .. q, now + ttl, d)
  else
    local c = redis.call('HMGET', 'rq:job:' .. cause, 'tr_exc_type', 'tr_exc_message', 'tr_task')
    etype = c[1] or 'TaskFailed'
    local msg = 'not run because ' .. (c[3] or 'job') .. ' ' .. cause .. ' failed: ' .. etype .. ': ' .. (c[2] or '')
    redis.call('HSET', djkey, 'status', 'failed', 'ended_at', now_text, 'tr_exc_type', etype,
      'tr_exc_message', string.sub(msg, 1, 2000))
    local exc, last = '', redis.call('XREVRANGE', 'rq:results:' .. cause, '+', '-', 'COUNT', 1)
    if last[1] then
      local kv = last[1][2]
      for j = 1, #kv, 2 do if kv[j] == 'exc_string' then exc = kv[j + 1] end end
    end
    redis.call('XADD', 'rq:results:' .. d, 'MAXLEN', '10', '*', 'type', '2', 'worker_name', worker, 'exc_string', exc)
    redis.call('EXPIRE', 'rq:results:' .. d, ttl)
    redis.call('ZADD', 'rq:failed:' .. q, now + ttl, d)
    ev = 'failed'
  end
  redis.call('EXPIRE', djkey, ttl)
  flow_notify(d)
  flow_event(q, ev, d, task, etype)
end

-- Called once a job ended for good (kind ok | fail | revoked). Cascades through dependents that can
-- no longer run, without recursion (a worklist), all inside the caller's atomic script.
local function release_dependents(id, kind, now, now_text)
  local work, kinds, i = {id}, {kind}, 1
  while i <= #work do
    local cur, ckind = work[i], kinds[i]
    i = i + 1
    local jkey = 'rq:job:' .. cur
    local pkey = 'rq:job::' .. cur .. ':dependencies'
    flow_member_done(cur, now)
    redis.call('DEL', pkey)
    local dkey = jkey .. ':dependents'
    local deps = redis.call('SMEMBERS', dkey)
    -- tr_released guards against a second settle of the same job (a worker thought dead that was not).
    if #deps > 0 and (redis.call('EXISTS', jkey) == 0 or redis.call('HSETNX', jkey, 'tr_released', '1') == 1) then
      for _, d in ipairs(deps) do
        local f = redis.call('HMGET', 'rq:job:' .. d, 'status', 'tr_policy', 'origin', 'tr_released')
        if f[1] == 'canceled' and not f[4] then
          -- revoked while it waited by something that did not cascade (AsyncResult.revoke): do it now
          redis.call('ZREM', 'rq:deferred:' .. (f[3] or 'default'), d)
          work[#work + 1] = d
          kinds[#kinds + 1] = 'revoked'
        elseif f[1] == 'deferred' then
          if ckind ~= 'ok' and (f[2] or 'fail') == 'fail' then
            flow_stop(d, cur, ckind, now, now_text)
            work[#work + 1] = d
            kinds[#kinds + 1] = ckind == 'revoked' and 'revoked' or 'fail'
          else
            if redis.call('HINCRBY', 'rq:job:' .. d, 'tr_pending', -1) <= 0 then
              flow_release(d, f[3] or 'default', now, now_text)
            end
          end
        end
      end
      local ttl = redis.call('TTL', jkey)
      if ttl > 0 then redis.call('EXPIRE', dkey, ttl) end
    end
  end
end
"""
)

# Write a chunk of flow jobs. Dependents are written before their parents are queued, so no parent
# can finish before its dependent counts it. Fields most jobs share (task, queue, TTLs, status) are
# passed once and reused by the records after it that say -1.
# ARGV: events maxlen, now, then per job: id, queue, state (queued|scheduled|deferred), run_at,
# priority (-1: none), task, parent count n, n parent ids, shared field count m (-1: as the previous
# job), m items, own field count k, k items.
FLOW_ENQUEUE = (
    QUEUE_PUSH_LUA
    + """
local maxlen, now = ARGV[1], ARGV[2]
local shared, woken = {}, {}
local i = 3
while i <= #ARGV do
  local id, q, state, run_at, prio, task = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local np = tonumber(ARGV[i + 6])
  i = i + 7
  local jkey = 'rq:job:' .. id
  local pending = 0
  for j = i, i + np - 1 do
    redis.call('SADD', 'rq:job:' .. ARGV[j] .. ':dependents', id)
    pending = pending + redis.call('SADD', 'rq:job::' .. id .. ':dependencies', ARGV[j])
  end
  i = i + np
  local ns = tonumber(ARGV[i])
  if ns >= 0 then
    shared = {}
    for j = i + 1, i + ns do shared[#shared + 1] = ARGV[j] end
    i = i + ns
  end
  local nown = tonumber(ARGV[i + 1])
  local fields = {unpack(ARGV, i + 2, i + 1 + nown)}
  for j = 1, #shared do fields[nown + j] = shared[j] end
  redis.call('HSET', jkey, unpack(fields))
  i = i + nown + 2
  if state == 'deferred' then
    redis.call('HSET', jkey, 'tr_pending', pending)
    redis.call('ZADD', 'rq:deferred:' .. q, now, id)
  else
    if state == 'scheduled' then
      redis.call('ZADD', 'rq:scheduled:' .. q, run_at, id)
      woken[q] = woken[q] or false
    else
      push_waiting('rq:queue:' .. q, id, prio)
      woken[q] = true
    end
    redis.call('XADD', 'taskrail:events:' .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'enqueued', 'job', id, 'task', task)
  end
end
for q, now_ready in pairs(woken) do
  redis.call('SADD', 'rq:queues', 'rq:queue:' .. q)
  if now_ready then
    wake(q)
  end
end
return 1
"""
)

# Revoke flow members: cancel those that wait (and, through release_dependents, everything that
# waited on them); flag those that run so their workers stop them. Returns one outcome per id.
# ARGV: now, now_text, maxlen, then job ids.
FLOW_REVOKE = (
    """
local now, now_text, maxlen = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local worker = ''
"""
    + RELEASE_LUA
    + """
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local jkey = 'rq:job:' .. id
  local f = redis.call('HMGET', jkey, 'status', 'origin', 'failure_ttl', 'tr_task')
  local q, ttl = f[2] or 'default', tonumber(f[3]) or 604800
  if f[1] == 'queued' or f[1] == 'scheduled' or f[1] == 'deferred' then
    redis.call('HSET', jkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZREM', 'rq:scheduled:' .. q, id)
    redis.call('ZREM', 'rq:deferred:' .. q, id)
    -- Small queues lose the entry now; in long ones the claim script drops canceled jobs (LREM is O(n)).
    if redis.call('LLEN', 'rq:queue:' .. q) <= 1000 then redis.call('LREM', 'rq:queue:' .. q, 1, id) end
    redis.call('ZADD', 'rq:canceled:' .. q, now + ttl, id)
    redis.call('EXPIRE', jkey, ttl)
    flow_notify(id)
    flow_event(q, 'revoked', id, f[4] or '', '')
    release_dependents(id, 'revoked', now, now_text)
    out[#out + 1] = 'canceled'
  elseif f[1] == 'started' then
    redis.call('SET', 'taskrail:revoke:' .. id, '1', 'EX', 3600)
    out[#out + 1] = 'stopping'
  elseif f[1] then
    out[#out + 1] = 'already ' .. f[1]
  else
    out[#out + 1] = 'missing'
  end
end
return out
"""
)
