-- finish: settle a batch of jobs this worker ran (see includes/settle for each kind).
-- KEYS[1]  the worker's claims hash (K.claims .. worker): each settled id is dropped from it
-- ARGV     worker, now, now_text, maxlen, minute, then RECORD_FIELDS values per job:
--          id, queue, kind, payload, ttl, retry_at, exc_type, exc_msg, ms, task, bucket
-- Reply    1
-- Events   one per job from settle (completed, failed, retried, requeued, revoked, ...), and from
--          release_dependents for dependents released or stopped.
-- Keys     those of includes/settle.
local worker, now, now_text, maxlen, minute = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
--- @include "includes/settle"

for i = 6, #ARGV, RECORD_FIELDS do
  settle(ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7], ARGV[i+8], ARGV[i+9], ARGV[i+10])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
