-- flow_revoke: revoke jobs: cancel those that wait (and, through release_dependents, everything
-- that waited on them); flag those that run (K.revoke .. id, an hour) so their workers stop them.
-- KEYS     none
-- ARGV     now, now_text, maxlen, then job ids
-- Reply    one outcome per id: canceled | stopping | already <status> | missing
-- Events   revoked, per canceled job, and release_dependents' for what waited on it
-- Keys     K.job, K.scheduled, K.deferred, K.queue, K.queue_level, K.canceled, K.revoke, and those of
--          includes/release_dependents
--- @include "keys"
--- @include "includes/notify_waiters"
--- @include "includes/queue_push"
--- @include "includes/release_dependents"

local now, now_text = tonumber(ARGV[1]), ARGV[2]
local ctx = {worker = '', now = now, now_text = now_text, maxlen = ARGV[3]}  -- no worker: results and events name none

local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local jkey = K.job .. id
  local f = redis.call('HMGET', jkey, 'status', 'origin', 'failure_ttl', 'tr_task', 'tr_priority')
  local q, ttl = f[2] or 'default', tonumber(f[3]) or 604800
  if f[1] == 'queued' or f[1] == 'scheduled' or f[1] == 'deferred' then
    redis.call('HSET', jkey, 'status', 'canceled', 'ended_at', now_text)
    redis.call('ZREM', K.scheduled .. q, id)
    redis.call('ZREM', K.deferred .. q, id)
    -- Small queues lose the entry now; in long ones the claim script drops canceled jobs (LREM is O(n)).
    local list = queue_list(q, f[5])
    if redis.call('LLEN', list) <= 1000 then redis.call('LREM', list, 1, id) end
    redis.call('ZADD', K.canceled .. q, now + ttl, id)
    redis.call('EXPIRE', jkey, ttl)
    notify_waiters(id)
    flow_event(ctx, q, 'revoked', id, f[4] or '', '')
    release_dependents(ctx, id, 'revoked')
    out[#out + 1] = 'canceled'
  elseif f[1] == 'started' then
    redis.call('SET', K.revoke .. id, '1', 'EX', 3600)
    out[#out + 1] = 'stopping'
  elseif f[1] then
    out[#out + 1] = 'already ' .. f[1]
  else
    out[#out + 1] = 'missing'
  end
end
return out
