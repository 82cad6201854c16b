-- reap: hand back the jobs of workers whose heartbeat expired: to the front of their queue, or to
-- the failed registry once they stalled more than max_stalled times; then forget those workers, in
-- taskrail's set and in RQ's worker keys. Run by the leader only.
-- KEYS[1]  the workers set (keys.WORKERS)
-- ARGV     now, now_text, maxlen, minute, max_stalled, failure ttl
-- Reply    ids of the jobs recovered (requeued or failed), or an error (before any write) for a bad number
-- Events   stalled (with the stall count) per job, then settle's requeue ('recovered') or failed
-- Keys     K.heartbeat, K.claims, K.rate_overrides, K.job, K.taskstats, K.events, K.rq_worker, K.rq_workers,
--          K.rq_queue_workers, and those of includes/settle
--- @include "keys"
--- @include "includes/settle"
--- @include "includes/task_stats"

local ctx = {worker = '', now = tonumber(ARGV[1]), now_text = ARGV[2], maxlen = ARGV[3], minute = ARGV[4]}
local max_stalled, failure_ttl = tonumber(ARGV[5]), ARGV[6]
if not (ctx.now and max_stalled and tonumber(failure_ttl)) then
  return redis.error_reply('reap: now, max_stalled and failure ttl must be numbers')
end
local recovered = {}
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', K.heartbeat .. w) == 0 then
    ctx.worker = w  -- settle writes it into results and events
    local held = redis.call('HGETALL', K.claims .. w)
    for i = 1, #held, 2 do
      local id, q = held[i], held[i + 1]
      local task = redis.call('HGET', K.job .. id, 'tr_task') or ''
      local stalls = redis.call('HINCRBY', K.job .. id, 'tr_stalls', 1)
      count_task(task, 'stalled')
      redis.call('XADD', K.events .. q, 'MAXLEN', '~', ctx.maxlen, '*', 'event', 'stalled', 'job', id, 'task', task, 'worker', w, 'stalls', stalls)
      if stalls > max_stalled then
        local msg = 'job stalled ' .. stalls .. ' times (its worker died while running it); max_stalled is ' .. max_stalled
        settle(ctx, id, q, 'fail', '', failure_ttl, 0, 'JobStalled', msg, 0, task, '')
      else
        settle(ctx, id, q, 'requeue', '', 0, 0, 'recovered', '', 0, task, '')
      end
      recovered[#recovered + 1] = id
    end
    redis.call('DEL', K.claims .. w, K.rate_overrides .. w)
    redis.call('SREM', KEYS[1], w)
    local queues = redis.call('HGET', K.rq_worker .. w, 'queues')
    if queues then
      for qn in string.gmatch(queues, '[^,]+') do redis.call('SREM', K.rq_queue_workers .. qn, K.rq_worker .. w) end
    end
    redis.call('SREM', K.rq_workers, K.rq_worker .. w)
    redis.call('DEL', K.rq_worker .. w)
  end
end
return recovered
