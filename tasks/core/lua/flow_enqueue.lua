-- flow_enqueue: write a chunk of flow jobs. A job that waits for others is written as RQ writes a
-- job with depends_on: status deferred, in the deferred registry, with its parents in
-- K.dependencies(id) and its id in every parent's K.dependents(parent); tr_pending counts its
-- parents. Dependents are written before their parents are queued (the caller orders the records),
-- so no parent can finish before its dependent counts it. Fields most jobs share (task, queue, TTLs,
-- status) are passed once and reused by the records after it that say -1.
-- KEYS     none
-- ARGV     events maxlen, now, then per job: id, queue, state (queued | scheduled | deferred),
--          run_at, priority (-1: none), task, parent count n, n parent ids, shared item count m
--          (-1: as the previous job), m items, own item count k, k items (field, value, ...)
-- Reply    1
-- Events   enqueued, per job that is queued or scheduled (deferred jobs get theirs when released)
-- Keys     K.job, K.dependents, K.dependencies, K.deferred, K.scheduled, K.queue, K.queue_level, K.levels,
--          K.events, K.queues, K.wake
--- @include "keys"
--- @include "includes/queue_push"

local maxlen, now = ARGV[1], ARGV[2]
local shared, woken = {}, {}
local i = 3
while i <= #ARGV do
  local id, q, state, run_at, prio, task = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local np = tonumber(ARGV[i + 6])
  i = i + 7
  local jkey = K.job .. id
  local pending = 0
  for j = i, i + np - 1 do
    redis.call('SADD', K.dependents(ARGV[j]), id)
    pending = pending + redis.call('SADD', K.dependencies(id), ARGV[j])
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
    redis.call('ZADD', K.deferred .. q, now, id)
  else
    if state == 'scheduled' then
      redis.call('ZADD', K.scheduled .. q, run_at, id)
      woken[q] = woken[q] or false
    else
      push_waiting(q, id, prio)
      woken[q] = true
    end
    redis.call('XADD', K.events .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'enqueued', 'job', id, 'task', task)
  end
end
for q, now_ready in pairs(woken) do
  redis.call('SADD', K.queues, K.queue .. q)
  if now_ready then
    wake(q)
  end
end
return 1
