-- wake(q): leave one wake-up token for a worker blocked on queue q (the list stays short).
-- Keys: K.wake.
--- @include "keys"

local function wake(q)
  redis.call('LPUSH', K.wake .. q, '1')
  redis.call('LTRIM', K.wake .. q, 0, 999)
end
