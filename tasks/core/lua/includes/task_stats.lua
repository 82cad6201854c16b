-- count_task(task, field, ctx): one more of field (completed, failed, retried, stalled) in the task's
-- statistics (K.taskstats); the task joins metrics' index of task names (K.tasks) with the first count
-- of each field, so keeping the index costs one write per task and field, never one per job. With a
-- ctx that has a tally (finish), the count is summed there and written once per batch.
-- Keys: K.taskstats, K.tasks.
--- @include "keys"
--- @include "includes/tally"

local function count_task(task, field, ctx)
  tally_incr(ctx and ctx.tally, K.taskstats .. task, field, 1, K.tasks, task)
end
