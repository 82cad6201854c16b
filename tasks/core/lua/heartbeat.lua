-- heartbeat: keep this worker alive: its heartbeat key, its membership, and the started-registry
-- deadline of every job it holds (RQ's own cleanup would otherwise fail them).
-- KEYS[1]  heartbeat (K.heartbeat .. worker), KEYS[2] claims (K.claims .. worker), KEYS[3] workers set
-- ARGV     worker, heartbeat ttl (ms), started-registry score (unix time)
-- Reply    ids of held jobs flagged for revoke (K.revoke .. id)
-- Events   none
-- Keys     K.wip, K.revoke
--- @include "keys"

redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
local held = redis.call('HGETALL', KEYS[2])
local revoked = {}
for i = 1, #held, 2 do
  redis.call('ZADD', K.wip .. held[i + 1], 'XX', ARGV[3], held[i] .. ':' .. ARGV[1])
  if redis.call('EXISTS', K.revoke .. held[i]) == 1 then revoked[#revoked + 1] = held[i] end
end
return revoked
