"""Server-side scripts of the worker: each turns many RQ bookkeeping commands into one round trip.

They write exactly the structures RQ writes (job hash status and times, the started/finished/failed/
scheduled/canceled registries, the results stream), so RQ's tools keep working, plus taskrail's
claims, events and statistics.
"""

from __future__ import annotations

from tasks.core.queues import QUEUE_PUSH_LUA
from workers.flows import FLOW_LUA
from workers.ratelimit import RELEASE_LUA

__all__ = ["FINISH", "HEARTBEAT", "PROMOTE", "REAP", "RECORD_FIELDS"]

# Shared by FINISH and REAP: settle one job. Globals set by the caller: worker, now, now_text,
# maxlen, minute. kind: ok | fail | retry | requeue | revoked.
_SETTLE = (
    FLOW_LUA
    + RELEASE_LUA
    + """
local function settle(id, q, kind, payload, ttl, retry_at, exc_type, exc_msg, duration_ms, task, bucket)
  local jkey = 'rq:job:' .. id
  redis.call('ZREM', 'rq:wip:' .. q, id .. ':' .. worker)
  release_slot(id, q)
  if redis.call('EXISTS', jkey) == 0 then return end
  local ev = kind
  ttl = tonumber(ttl)
  local stats = 'taskrail:stats:' .. q .. ':' .. minute
  local tstats = 'taskrail:taskstats:' .. task
  if kind == 'ok' then
    redis.call('HSET', jkey, 'status', 'finished', 'ended_at', now_text)
    redis.call('HDEL', jkey, 'tr_exc_type', 'tr_exc_message')
    local rkey = 'rq:results:' .. id
    if payload ~= '' then
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', worker, 'return_value', payload)
    else
      redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '1', 'worker_name', worker)
    end
    if ttl == 0 then
      redis.call('DEL', jkey, rkey)
    elseif ttl > 0 then
      redis.call('ZADD', 'rq:finished:' .. q, now + ttl, id)
      redis.call('EXPIRE', jkey, ttl)
      redis.call('EXPIRE', rkey, ttl)
    else
      redis.call('ZADD', 'rq:finished:' .. q, '+inf', id)
    end
    redis.call('HINCRBY', stats, 'completed', 1)
    redis.call('HINCRBY', tstats, 'completed', 1)
    ev = 'completed'
  elseif kind == 'fail' then
    local rkey = 'rq:results:' .. id
    redis.call('HSET', jkey, 'status', 'failed', 'ended_at', now_text, 'tr_exc_type', exc_type, 'tr_exc_message', exc_msg)
    redis.call('XADD', rkey, 'MAXLEN', '10', '*', 'type', '2', 'worker_name', worker, 'exc_string', payload)
    redis.call('ZADD', 'rq:failed:' .. q, now + ttl, id)
    redis.call('EXPIRE', jkey, ttl)
    redis.call('EXPIRE', rkey, ttl)
    redis.call('HINCRBY', stats, 'failed', 1)
    redis.call('HINCRBY', tstats, 'failed', 1)
    ev = 'failed'
  elseif kind == 'retry' then
    redis.call('HINCRBY', jkey, 'tr_retries', 1)
    redis.call('HSET', jkey, 'tr_exc_type', exc_type, 'tr_exc_message', exc_msg)
    redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '10', '*', 'type', '4', 'worker_name', worker, 'exc_string', payload)
    if tonumber(retry_at) > now then
      redis.call('HSET', jkey, 'status', 'scheduled')
      redis.call('ZADD', 'rq:scheduled:' .. q, retry_at, id)
    else
      make_ready(q, id, now_text)
    end
    redis.call('HINCRBY', tstats, 'retried', 1)
    ev = 'retried'
  elseif kind == 'requeue' then
    if exc_type == 'stalled' then
      redis.call('HINCRBY', jkey, 'tr_stalls', 1)
      task = redis.call('HGET', jkey, 'tr_task') or task  -- a dead work-horse's outcome names no task
      redis.call('HINCRBY', 'taskrail:taskstats:' .. task, 'stalled', 1)  -- as REAP counts a dead worker's jobs
    end
    redis.call('HSET', jkey, 'status', 'queued')
    redis.call('LPUSH', 'rq:queue:' .. q, id)
    wake(q)
    ev = exc_type ~= '' and exc_type or 'requeued'
  elseif kind == 'revoked' then
    redis.call('HSET', jkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZADD', 'rq:canceled:' .. q, now + ttl, id)
    redis.call('DEL', 'taskrail:revoke:' .. id)
    ev = 'revoked'
  end
  if bucket ~= '' then
    redis.call('HINCRBY', tstats, bucket, 1)
    redis.call('HINCRBY', tstats, 'sum_us', math.floor(tonumber(duration_ms) * 1000))
  end
  redis.call('EXPIRE', stats, 7200)
  if kind ~= 'retry' and kind ~= 'requeue' then
    local ukey = redis.call('HGET', jkey, 'tr_unique')
    if ukey and redis.call('HGET', jkey, 'tr_unique_mode') ~= 'throttle' and redis.call('GET', ukey) == id then
      redis.call('DEL', ukey)
    end
    if redis.call('EXISTS', 'taskrail:waiters:' .. id) == 1 then
      redis.call('RPUSH', 'taskrail:done:' .. id, '1')
      redis.call('EXPIRE', 'taskrail:done:' .. id, 300)
    end
  end
  if kind ~= 'retry' and kind ~= 'requeue' then release_dependents(id, kind, now, now_text) end
  redis.call('XADD', 'taskrail:events:' .. q, 'MAXLEN', '~', maxlen, '*', 'event', ev, 'job', id, 'task', task,
    'worker', worker, 'ms', duration_ms, 'error', exc_type)
end
"""
)

RECORD_FIELDS = 11

# Settle a batch of finished jobs. KEYS: claims. ARGV: worker, now, now_text, maxlen, minute, then
# RECORD_FIELDS values per job: id, queue, kind, payload, ttl, retry_at, exc_type, exc_msg, ms, task, bucket.
FINISH = (
    """
local worker, now, now_text, maxlen, minute = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
"""
    + _SETTLE
    + """
for i = 6, #ARGV, 11 do
  settle(ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7], ARGV[i+8], ARGV[i+9], ARGV[i+10])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
"""
)

# Keep this worker alive: heartbeat key, membership, and the started-registry deadline of every
# job it holds (RQ's own cleanup would otherwise fail them). Returns held jobs flagged for revoke.
# KEYS: heartbeat, claims, workers. ARGV: worker, ttl ms, wip score
HEARTBEAT = """
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
local held = redis.call('HGETALL', KEYS[2])
local revoked = {}
for i = 1, #held, 2 do
  redis.call('ZADD', 'rq:wip:' .. held[i + 1], 'XX', ARGV[3], held[i] .. ':' .. ARGV[1])
  if redis.call('EXISTS', 'taskrail:revoke:' .. held[i]) == 1 then revoked[#revoked + 1] = held[i] end
end
return revoked
"""

# Hand back the jobs of workers whose heartbeat expired: to the front of their queue, or to the
# failed registry once they stalled more than max_stalled times. Run by the leader only.
# KEYS: workers. ARGV: now, now_text, maxlen, minute, max_stalled, failure ttl
REAP = (
    """
local now, now_text, maxlen, minute = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local max_stalled, failure_ttl = tonumber(ARGV[5]), ARGV[6]
local worker = ''
"""
    + _SETTLE
    + """
local recovered = {}
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', 'taskrail:hb:' .. w) == 0 then
    worker = w
    local held = redis.call('HGETALL', 'taskrail:claims:' .. w)
    for i = 1, #held, 2 do
      local id, q = held[i], held[i + 1]
      local task = redis.call('HGET', 'rq:job:' .. id, 'tr_task') or ''
      local stalls = redis.call('HINCRBY', 'rq:job:' .. id, 'tr_stalls', 1)
      redis.call('HINCRBY', 'taskrail:taskstats:' .. task, 'stalled', 1)
      redis.call('XADD', 'taskrail:events:' .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'stalled', 'job', id, 'task', task, 'worker', w, 'stalls', stalls)
      if stalls > max_stalled then
        local msg = 'job stalled ' .. stalls .. ' times (its worker died while running it); max_stalled is ' .. max_stalled
        settle(id, q, 'fail', '', failure_ttl, 0, 'JobStalled', msg, 0, task, '')
      else
        settle(id, q, 'requeue', '', 0, 0, 'recovered', '', 0, task, '')
      end
      recovered[#recovered + 1] = id
    end
    redis.call('DEL', 'taskrail:claims:' .. w)
    redis.call('SREM', KEYS[1], w)
    local queues = redis.call('HGET', 'rq:worker:' .. w, 'queues')
    if queues then
      for qn in string.gmatch(queues, '[^,]+') do redis.call('SREM', 'rq:workers:' .. qn, 'rq:worker:' .. w) end
    end
    redis.call('SREM', 'rq:workers', 'rq:worker:' .. w)
    redis.call('DEL', 'rq:worker:' .. w)
  end
end
return recovered
"""
)

# Move due jobs from RQ's scheduled registries into their queues. Atomic, so it fires each job
# once however many processes run it; priorities keep their order. KEYS: queue names. ARGV: now, now_text, limit
PROMOTE = (
    QUEUE_PUSH_LUA
    + """
local moved = 0
for _, q in ipairs(KEYS) do
  local due = redis.call('ZRANGEBYSCORE', 'rq:scheduled:' .. q, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(due) do
    redis.call('ZREM', 'rq:scheduled:' .. q, id)
    if redis.call('EXISTS', 'rq:job:' .. id) == 1 then
      make_ready(q, id, ARGV[2])
      redis.call('SADD', 'rq:queues', 'rq:queue:' .. q)
      moved = moved + 1
    end
  end
end
return moved
"""
)
