-- execution: write, or refresh, RQ 3's execution record (rq/executions.py) of jobs this worker is still
-- running, so that job.get_executions(), send_stop_execution_command and Worker.get_current_executions
-- see them. The worker's maintenance thread sends it only for a job running longer than a threshold
-- (workers/executions.py): a short job never has one. The execution id is the worker's name, which is
-- also the execution part of the job's member of the started registry (K.wip: id:worker).
-- KEYS[1]  the worker's claims hash (K.claims .. worker): the fence
-- ARGV     worker, now (unix time), ttl (seconds), then pairs: job id, token (the claim's attempt number)
-- Reply    the ids whose record was written; a job whose claim this worker no longer holds under that
--          token, or that is not started, is skipped (its settle may have run already: nothing is
--          written after it); an error before any write when a number is not one
-- Events   none
-- Keys     K.job, K.rq_execution, K.rq_executions, K.rq_worker_executions. The job hash gets tr_exec =
--          worker, so that its settle (includes/settle) deletes the record in the same script.
--- @include "keys"

local worker, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not (now and ttl and ttl > 0) or (#ARGV - 3) % 2 ~= 0 then
  return redis.error_reply('execution: expected worker, now, ttl > 0 and pairs of job id, token')
end
for i = 4, #ARGV, 2 do
  if not tonumber(ARGV[i + 1]) then
    return redis.error_reply('execution: job ' .. ARGV[i] .. ': token must be a number')
  end
end

local written = {}
local index = K.rq_worker_executions(worker)
for i = 4, #ARGV, 2 do
  local id, token = ARGV[i], tonumber(ARGV[i + 1])
  local jkey = K.job .. id
  local job = redis.call('HMGET', jkey, 'status', 'tr_attempts')
  if redis.call('HEXISTS', KEYS[1], id) == 1 and job[1] == 'started' and tonumber(job[2]) == token then
    local ekey = K.rq_execution(id, worker)
    redis.call('HSETNX', ekey, 'created_at', now)
    redis.call('HSET', ekey, 'id', worker, 'job_id', id, 'last_heartbeat', now, 'worker_name', worker)
    redis.call('EXPIRE', ekey, ttl)
    redis.call('ZADD', K.rq_executions .. id, now + ttl + 60, worker)  -- RQ's ExecutionRegistry.add
    redis.call('EXPIRE', K.rq_executions .. id, ttl + 60)
    redis.call('SADD', index, id .. ':' .. worker)
    redis.call('EXPIRE', index, ttl + 60)
    redis.call('HSET', jkey, 'tr_exec', worker)
    written[#written + 1] = id
  end
end
return written
