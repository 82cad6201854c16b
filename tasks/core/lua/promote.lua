-- promote: move due jobs from RQ's scheduled registries into their queues. Atomic, so it fires each
-- job once however many processes run it; priorities keep their order.
-- KEYS     queue names (not keys)
-- ARGV     now, now_text, limit (jobs per queue and call)
-- Reply    how many jobs moved
-- Events   none
-- Keys     K.scheduled, K.job, K.queues, K.queue (and through make_ready K.prio, K.wake)
--- @include "keys"
--- @include "includes/queue_push"

local moved = 0
for _, q in ipairs(KEYS) do
  local due = redis.call('ZRANGEBYSCORE', K.scheduled .. q, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(due) do
    redis.call('ZREM', K.scheduled .. q, id)
    if redis.call('EXISTS', K.job .. id) == 1 then
      make_ready(q, id, ARGV[2])
      redis.call('SADD', K.queues, K.queue .. q)
      moved = moved + 1
    end
  end
end
return moved
