-- enqueue_many: write a batch of jobs of one queue and one priority (no delay, no unique key) in one
-- call: the fields they share are passed once, then id, data and description per job. Each goes to
-- the back of its priority's list (includes/queue_push), O(1) per job.
-- KEYS[1]  queue list (K.queue .. queue)      KEYS[4]  events stream (K.events .. queue)
-- KEYS[2]  queues set (K.queues)
-- KEYS[3]  wake-up list (K.wake .. queue)
-- ARGV     maxlen, task name, n (count of shared items), n shared items (field, value, ...; a
--          tr_priority among them is the batch's priority), then id, data and description per job
-- Reply    how many jobs were written
-- Events   enqueued, per job
-- Keys     K.job, K.queue_level, K.levels (a priority other than the default)
--- @include "keys"
--- @include "includes/queue_push"

local maxlen, task, nshared = ARGV[1], ARGV[2], tonumber(ARGV[3])
local shared, prio = {}, nil
for i = 4, 3 + nshared do shared[#shared + 1] = ARGV[i] end
for i = 1, #shared - 1, 2 do
  if shared[i] == 'tr_priority' then prio = shared[i + 1] end
end
local q = string.sub(KEYS[1], #K.queue + 1)  -- KEYS[1] is K.queue .. q
local first = 4 + nshared
-- A batch sent again (its reply lost; redis-py resends) finds its first job written with the same created_at: the
-- script wrote the whole batch then, so it writes nothing now.
for i = 1, nshared, 2 do
  if shared[i] == 'created_at' then
    if first <= #ARGV and redis.call('HGET', K.job .. ARGV[first], 'created_at') == shared[i + 1] then
      return (#ARGV - first + 1) / 3
    end
    break
  end
end
for i = first, #ARGV, 3 do
  local id = ARGV[i]
  redis.call('HSET', K.job .. id, 'data', ARGV[i + 1], 'description', ARGV[i + 2], unpack(shared))
  if prio then push_waiting(q, id, prio) else redis.call('RPUSH', KEYS[1], id) end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'event', 'enqueued', 'job', id, 'task', task)
end
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, 999)
return (#ARGV - first + 1) / 3
