-- notify_waiters(id): the job ended for good; if someone blocks in AsyncResult.get() on it
-- (K.waiters), push to the list they wait on (K.done, kept 300 s).
--- @include "keys"

local function notify_waiters(id)
  if redis.call('EXISTS', K.waiters .. id) == 1 then
    redis.call('RPUSH', K.done .. id, '1')
    redis.call('EXPIRE', K.done .. id, 300)
  end
end
