-- finish: settle a batch of jobs this worker ran (see includes/settle for each kind), each fenced
-- by the claim it settles.
-- KEYS[1]  the worker's claims hash (K.claims .. worker): each settled id is dropped from it
-- KEYS[2]  optional: the worker's RQ hash (rq:worker:<name>); while it exists, its statistics
--          successful_job_count, failed_job_count (fail, stopped and the retries, as RQ counts them) and
--          total_working_time (seconds) count the applied records, as RQ's worker writes them
-- ARGV     worker, now, now_text, maxlen, minute, then RECORD_FIELDS values per job:
--          id, queue, kind, payload, ttl, retry_at, exc_type, exc_msg, ms, task, bucket, token,
--          started_at, ended_at (the run's times in RQ's format; '' when it did not run here)
--          (token: the attempt number the claim gave the job; 0 for a claim known only by id;
--          kind rq_returned: payload is the returned Retry as JSON {max, intervals, at_front})
-- Reply    {applied, id...}: how many records took effect, then the ids of settles refused because
--          this worker no longer holds that claim; or an error (before any write) when the records
--          are not whole, a number is not one or an rq_returned payload is not a Retry
-- Events   one per applied job from settle (completed, failed, retried, requeued, revoked, ...) and
--          from release_dependents; settle_rejected for each refused settle
-- Keys     K.job, K.events and those of includes/settle.
--
-- The fence: a record applies only while this worker still holds the claim (the id is in its claims
-- hash) and, for a token above 0, only if the job's tr_attempts is still that token (the same worker
-- may have claimed the job again since). An applied settle marks the job tr_settled = worker:token.
-- A settle sent again after its reply was lost finds the claim gone and that mark: it changes
-- nothing, silently. A settle from a worker whose claim was taken away (it looked dead, its job was
-- recovered and maybe run elsewhere) changes nothing either, and writes settle_rejected.
--- @include "keys"
--- @include "includes/settle"
--- @include "includes/tally"

-- A returned Retry's payload (workers/runner.py): {max >= 1, intervals: a list of numbers >= 0, at_front}.
local function rq_spec_ok(payload)
  local ok, spec = pcall(cjson.decode, payload)
  if not (ok and type(spec) == 'table' and type(spec.max) == 'number' and spec.max >= 1
    and type(spec.intervals) == 'table' and type(spec.at_front) == 'boolean') then return false end
  for _, v in ipairs(spec.intervals) do if type(v) ~= 'number' or v < 0 then return false end end
  return true
end

local ctx = {worker = ARGV[1], now = tonumber(ARGV[2]), now_text = ARGV[3], maxlen = ARGV[4], minute = ARGV[5]}
-- Check every record before the first write: an error after one would leave the batch half settled.
if not ctx.now or (#ARGV - 5) % RECORD_FIELDS ~= 0 then
  return redis.error_reply('finish: expected worker, now, now_text, maxlen, minute and records of '
    .. RECORD_FIELDS .. ' values')
end
local ids, links = {}, {}  -- the batch's ids, and the keys of their waiters, dependents and dependencies
for i = 6, #ARGV, RECORD_FIELDS do
  local id = ARGV[i]
  ids[#ids + 1] = id
  links[#links + 1] = K.waiters .. id
  links[#links + 1] = K.dependents(id)
  links[#links + 1] = K.dependencies(id)
  if not (tonumber(ARGV[i+4]) and tonumber(ARGV[i+5]) and tonumber(ARGV[i+8]) and tonumber(ARGV[i+11])) then
    return redis.error_reply('finish: job ' .. ARGV[i] .. ': ttl, retry_at, ms and token must be numbers')
  end
  if ARGV[i+2] == 'rq_returned' and not rq_spec_ok(ARGV[i+3]) then
    return redis.error_reply('finish: job ' .. ARGV[i] .. ': an rq_returned payload must be JSON '
      .. '{"max": 1 or more, "intervals": [seconds, ...], "at_front": true|false}')
  end
end

local FENCE_FIELDS = settle_fields({'tr_attempts', 'tr_settled'})  -- settle's fields and the fence's
local applied, rejected, released, settled = 0, {}, {}, {}
local succeeded, failed, worked_ms = 0, 0, 0
-- Once per batch, not once per job: which claims this worker holds (one HMGET), and whether any of
-- the jobs has waiters, dependents or dependencies (one EXISTS; the common answer is none). Writes
-- every job makes to the same keys go through a tally, written at the end.
if #ids == 0 then return {0} end
local held, linked = {}, 0
for first = 1, #ids, 2000 do  -- in slices: unpack takes a few thousand values at most
  for _, v in ipairs(redis.call('HMGET', KEYS[1], unpack(ids, first, math.min(first + 1999, #ids)))) do
    held[#held + 1] = v
  end
end
for first = 1, #links, 2000 do
  linked = linked + redis.call('EXISTS', unpack(links, first, math.min(first + 1999, #links)))
end
ctx.links_checked = linked == 0
ctx.tally = new_tally()
for n = 1, #ids do
  local i = 6 + (n - 1) * RECORD_FIELDS
  local id, q, kind, token = ARGV[i], ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+11])
  local jkey = K.job .. id
  local mark = ctx.worker .. ':' .. token
  local holds = held[n] ~= false and not settled[id]  -- a batch naming a job twice settles it once
  -- One read for the fence and for settle: both need the job's fields.
  local job = settle_read(jkey, FENCE_FIELDS)
  if holds and token > 0 and tonumber(job.tr_attempts) ~= token then holds = false end
  if holds then
    ctx.mark, ctx.token = mark, token  -- settle writes the mark with the job's new status
    ctx.started, ctx.ended = ARGV[i+12], ARGV[i+13]  -- the run's own times (includes/settle run_times)
    settle(ctx, id, q, kind, ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7], ARGV[i+8], ARGV[i+9], ARGV[i+10],
      job)
    settled[id] = true
    released[#released + 1] = id
    applied = applied + 1
    if kind == 'ok' or kind == 'rq_repeat' then
      succeeded = succeeded + 1
    elseif kind ~= 'requeue' and kind ~= 'revoked' then  -- fail, stopped and every retry
      failed = failed + 1
    end
    if kind ~= 'requeue' and kind ~= 'revoked' then worked_ms = worked_ms + tonumber(ARGV[i+8]) end
  elseif (job.status or redis.call('EXISTS', jkey) == 1) and job.tr_settled ~= mark then
    rejected[#rejected + 1] = id
    redis.call('XADD', K.events .. q, 'MAXLEN', '~', ctx.maxlen, '*', 'event', 'settle_rejected', 'job', id,
      'task', ARGV[i+9], 'worker', ctx.worker, 'outcome', kind, 'attempt', token)
  end
end
tally_flush(ctx.tally)
if #released > 0 then call_sliced('HDEL', KEYS[1], released) end
-- HINCRBY would create a hash that never expires for a worker RQ's tools already forgot.
if KEYS[2] and (succeeded + failed) > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  if succeeded > 0 then redis.call('HINCRBY', KEYS[2], 'successful_job_count', succeeded) end
  if failed > 0 then redis.call('HINCRBY', KEYS[2], 'failed_job_count', failed) end
  redis.call('HINCRBYFLOAT', KEYS[2], 'total_working_time', worked_ms / 1000)
end
return {applied, unpack(rejected)}
