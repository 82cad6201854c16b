-- count_task(task, field): one more of field (completed, failed, retried, stalled) in the task's
-- statistics (K.taskstats); the task joins metrics' index of task names (K.tasks) with the first count
-- of each field, so keeping the index costs one write per task and field, never one per job.
-- Keys: K.taskstats, K.tasks.
--- @include "keys"

local function count_task(task, field)
  if redis.call('HINCRBY', K.taskstats .. task, field, 1) == 1 then redis.call('SADD', K.tasks, task) end
end
