-- enqueue: write one job atomically: its hash, then its queue in priority order (or the schedule),
-- a wake-up token for blocked workers, and an event. With a unique key it first returns the live
-- holder (debounce: a waiting holder takes the new fields and schedule; a running one gets a
-- successor; throttle: any holder wins).
-- KEYS[1]  job hash (K.job .. id)             KEYS[5]  wake-up list (K.wake .. queue)
-- KEYS[2]  queue list (K.queue .. queue)      KEYS[6]  events stream (K.events .. queue)
-- KEYS[3]  queues set (K.queues)              KEYS[7]  unique key (keys.UNIQUE), or '' for none
-- KEYS[4]  scheduled registry (K.scheduled .. queue)
-- KEYS[8]  the queue's priorities with jobs (K.levels .. queue)
-- ARGV     job id, run_at (0 = now), events maxlen, unique ttl (s), unique mode, task name, then
--          field, value, ... of the job hash
-- Reply    the job id (also when this very call was written before), or the id of the live job holding the
--          unique key; an error (before any write) when run_at or the unique ttl is not a number
-- Events   enqueued (none when a holder is returned)
-- Keys     K.job (the holder's hash), K.queue_level (a job of a priority other than the default)
--- @include "keys"
--- @include "includes/queue_push"

local job_id, run_at, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if not run_at or (KEYS[7] ~= '' and not tonumber(ARGV[4])) then  -- before the first write
  return redis.error_reply('enqueue: run_at and unique ttl must be numbers')
end
-- A call sent again (its reply lost to the network; redis-py and retry_policy resend) finds its own job written,
-- with the same created_at: it returns that job instead of queueing it twice.
local created, prio
for i = 7, #ARGV - 1, 2 do
  local field = ARGV[i]
  if field == 'created_at' then created = ARGV[i + 1] elseif field == 'tr_priority' then prio = ARGV[i + 1] end
end
local before = created and redis.call('HGET', KEYS[1], 'created_at')
if before and before == created then return job_id end
if KEYS[7] ~= '' then
  local holder = redis.call('GET', KEYS[7])
  if holder then
    local status = redis.call('HGET', K.job .. holder, 'status')
    local waiting = status == 'queued' or status == 'scheduled'
    if waiting or (status == 'started' and ARGV[5] ~= 'debounce') or ARGV[5] == 'throttle' then
      if ARGV[5] == 'debounce' and waiting then
        redis.call('HSET', K.job .. holder, unpack(ARGV, 7))
        redis.call('HSET', K.job .. holder, 'status', status)
        if status == 'scheduled' and run_at > 0 then redis.call('ZADD', KEYS[4], run_at, holder) end
      end
      if status then return holder end
    end
  end
  if tonumber(ARGV[4]) > 0 then
    redis.call('SET', KEYS[7], job_id, 'EX', ARGV[4])
  else
    redis.call('SET', KEYS[7], job_id)
  end
  redis.call('HSET', KEYS[1], 'tr_unique', KEYS[7], 'tr_unique_mode', ARGV[5])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('SADD', KEYS[3], KEYS[2])  -- also for a delayed job: the scheduler promotes registered queues
if run_at > 0 then
  redis.call('ZADD', KEYS[4], run_at, job_id)
else
  local q = string.sub(KEYS[2], #K.queue + 1)  -- KEYS[2] is K.queue .. q
  -- A new job's priority is the call's; a job id used before may keep an older tr_priority in its hash.
  if before or not created then prio = redis.call('HGET', KEYS[1], 'tr_priority') end
  push_waiting(q, job_id, prio)
  if redis.call('LPUSH', KEYS[5], '1') > 1000 then redis.call('LTRIM', KEYS[5], 0, 999) end  -- as wake(q)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', maxlen, '*', 'event', 'enqueued', 'job', job_id, 'task', ARGV[6])
return job_id
