-- requeue_dead: put one failed job back at the end of its queue, as fresh as a new job but with its
-- history: tr_attempts and the results stream stay, retries and stalls start again from zero.
-- KEYS[1]  failed registry (K.failed .. queue)   KEYS[5]  wake-up list (K.wake .. queue)
-- KEYS[2]  job hash (K.job .. id)                KEYS[6]  events stream (K.events .. queue)
-- KEYS[3]  queue list (K.queue .. queue)         KEYS[7]  results stream (K.results .. id)
-- KEYS[4]  queues set (K.queues)                 KEYS[8]  done list (K.done .. id)
-- ARGV     job id, now_text, maxlen
-- Reply    1 when requeued, 0 when it is not (any more) in the failed registry or has no hash
-- Events   requeued (reason dead-letter)
-- Keys     K.queue_level, K.levels (a job of a priority other than the default goes to its own list)
--- @include "keys"
--- @include "includes/queue_push"

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local task = redis.call('HGET', KEYS[2], 'tr_task') or ''
redis.call('HSET', KEYS[2], 'status', 'queued', 'enqueued_at', ARGV[2], 'ended_at', '', 'tr_retries', 0, 'tr_stalls', 0)
redis.call('HDEL', KEYS[2], 'tr_exc_type', 'tr_exc_message')
redis.call('PERSIST', KEYS[2])
redis.call('PERSIST', KEYS[7])
redis.call('DEL', KEYS[8])
push_waiting(string.sub(KEYS[3], #K.queue + 1), ARGV[1], redis.call('HGET', KEYS[2], 'tr_priority'))
redis.call('SADD', KEYS[4], KEYS[3])
redis.call('LPUSH', KEYS[5], '1')
redis.call('LTRIM', KEYS[5], 0, 999)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', 'event', 'requeued', 'job', ARGV[1], 'task', task,
  'reason', 'dead-letter')
return 1
