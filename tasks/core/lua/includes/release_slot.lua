-- release_slot(id, q): give back the concurrency slot job id holds (its job hash names the slot's
-- key in tr_slot), if any, and wake a worker of queue q, since a job waiting for that slot may
-- start now. Keys: K.job (and K.wake through wake).
--- @include "keys"
--- @include "includes/wake"

local function release_slot(id, q)
  local jkey = K.job .. id
  local slot = redis.call('HGET', jkey, 'tr_slot')
  if slot then
    redis.call('ZREM', slot, id)
    redis.call('HDEL', jkey, 'tr_slot')
    wake(q)
  end
end
