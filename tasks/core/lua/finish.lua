-- finish: settle a batch of jobs this worker ran (see includes/settle for each kind).
-- KEYS[1]  the worker's claims hash (K.claims .. worker): each settled id is dropped from it
-- ARGV     worker, now, now_text, maxlen, minute, then RECORD_FIELDS values per job:
--          id, queue, kind, payload, ttl, retry_at, exc_type, exc_msg, ms, task, bucket
-- Reply    1, or an error (before any write) when the records are not whole or a number is not one
-- Events   one per job from settle (completed, failed, retried, requeued, revoked, ...), and from
--          release_dependents for dependents released or stopped.
-- Keys     those of includes/settle.
--- @include "keys"
--- @include "includes/settle"

local ctx = {worker = ARGV[1], now = tonumber(ARGV[2]), now_text = ARGV[3], maxlen = ARGV[4], minute = ARGV[5]}
-- Check every record before the first write: an error after one would leave the batch half settled.
if not ctx.now or (#ARGV - 5) % RECORD_FIELDS ~= 0 then
  return redis.error_reply('finish: expected worker, now, now_text, maxlen, minute and records of '
    .. RECORD_FIELDS .. ' values')
end
for i = 6, #ARGV, RECORD_FIELDS do
  if not (tonumber(ARGV[i+4]) and tonumber(ARGV[i+5]) and tonumber(ARGV[i+8])) then
    return redis.error_reply('finish: job ' .. ARGV[i] .. ': ttl, retry_at and ms must be numbers')
  end
end

for i = 6, #ARGV, RECORD_FIELDS do
  settle(ctx, ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7], ARGV[i+8], ARGV[i+9], ARGV[i+10])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
