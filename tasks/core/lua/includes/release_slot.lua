-- release_slot(id, q, slot): give back the concurrency slot job id holds (slot: the key its job
-- hash names in tr_slot, as the caller read it; false or nil when it holds none), and wake a worker of queue q, since a job waiting for that slot may
-- start now. Keys: K.job (and K.wake through wake).
--- @include "keys"
--- @include "includes/wake"

local function release_slot(id, q, slot)
  if slot then
    redis.call('ZREM', slot, id)
    redis.call('HDEL', K.job .. id, 'tr_slot')
    wake(q)
  end
end
