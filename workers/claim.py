"""Which jobs a worker takes next: the CLAIM script and its arguments.

Queue order (strict priority or weights), pausing, priorities inside a queue and rate limits are
all decided here, inside one server-side script, so they hold across every worker and machine.

- Strict mode takes from the first non-empty queue in the worker's order; weighted mode picks the
  queue of every job by smooth weighted round robin (nginx's), its state kept per worker in
  ``taskrail:wrr:<worker>``, so each busy queue gets its weight's share and none starves.
- Inside a queue, ENQUEUE (tasks/core/client.py) already keeps the list in priority order; CLAIM only
  drops a claimed id from the queue's priority index ``taskrail:prio:<queue>``.
- A job over a limit (workers/ratelimit.py) is set aside and put back at the front of its queue in
  its place, so jobs behind it and other queues are still served. It is not failed and uses no
  retry. When nothing could be claimed, the reply says how long until the next slot frees, and the
  worker blocks on its wake-up lists for at most that long (it never spins).
- A job under a limit or cap is claimed only as a batch of its own, so it starts as it is claimed
  and its slot is not held while other jobs of the batch run.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from tasks.core import keys
from workers.ratelimit import LIMITS_LUA, policy_for

__all__ = ["CLAIM", "claim_call", "claim_reply"]

MAX_SET_ASIDE = 100  # limited jobs looked past per queue and claim; beyond, wait for the next claim

# KEYS: claims, paused, queue names... (in the worker's priority order)
# ARGV: worker, count, now, now_text, wip score, maxlen, mode, worker limit count (0 = none),
#       worker limit period, then per queue: weight, limit count (0 = none), limit period
# Returns claimed rows, then the milliseconds until a limited job may start (0 = none waits).
CLAIM = (
    """
local worker, count, now_text, score, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5], ARGV[6]
local weighted = ARGV[7] == 'weighted'
local t = redis.call('TIME')
local snow = tonumber(t[1]) + tonumber(t[2]) / 1000000
local room, waits = {}, {}
"""
    + LIMITS_LUA
    + f"""
local MAX_SET_ASIDE = {MAX_SET_ASIDE}
"""
    + """
local out, wait, stop = {}, 0, false
local set_aside, limited, indexed = {}, {}, {}
local function note_wait(w) if w and w > 0 and (wait == 0 or w < wait) then wait = w end end

-- per-worker limit: claim no more than its window has room for
local wkey, wlimit, wperiod = 'taskrail:rl:w:' .. worker, tonumber(ARGV[8]), tonumber(ARGV[9])
if wlimit > 0 then
  count = math.min(count, window_room(wkey, wlimit, wperiod))
  if count <= 0 then return {math.ceil(waits[wkey] * 1000)} end
end

local queues = {}
for i = 3, #KEYS do
  local q, a = KEYS[i], 10 + (i - 3) * 3
  local entry = {name = q, weight = tonumber(ARGV[a]), limit = tonumber(ARGV[a + 1]), period = tonumber(ARGV[a + 2])}
  entry.open = redis.call('SISMEMBER', KEYS[2], q) == 0
  if not entry.open then redis.call('DEL', 'taskrail:wake:' .. q) end
  set_aside[q] = {}
  queues[#queues + 1] = entry
end

-- 0 when the job may start now (its window and slot taken), else seconds to wait (-1: a cap)
local function try_limits(entry, id, jkey, task, rate, lkey, conc, member)
  local suffix = task
  if lkey and lkey ~= '' then suffix = task .. ':' .. lkey end
  local tkey, tn, tp
  if rate and rate ~= '' then
    local n, p = string.match(rate, '^(%d+)/([%d.e+-]+)$')
    if n then tkey, tn, tp = 'taskrail:rl:t:' .. suffix, tonumber(n), tonumber(p) end
  end
  if tkey and window_room(tkey, tn, tp) <= 0 then return waits[tkey] end
  local ckey
  if conc and conc ~= '' then
    ckey = 'taskrail:cc:' .. suffix
    if slot_room(ckey, tonumber(conc)) <= 0 then return -1 end
  end
  if entry.limit > 0 then window_take('taskrail:rl:q:' .. entry.name, entry.period, member) end
  if tkey then window_take(tkey, tp, member) end
  if ckey then slot_take(ckey, id, jkey) end
  return 0
end

local function claim(entry, id, jkey, f, attempts)
  local q = entry.name
  redis.call('HSET', jkey, 'status', 'started', 'started_at', now_text, 'worker_name', worker,
    'last_heartbeat', now_text, 'tr_attempts', attempts)
  redis.call('ZADD', 'rq:wip:' .. q, score, id .. ':' .. worker)
  redis.call('HSET', KEYS[1], id, q)
  if wlimit > 0 then window_take(wkey, wperiod, id .. ':' .. attempts) end
  local task = f[8] or ''
  redis.call('XADD', 'taskrail:events:' .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'started', 'job', id,
    'task', task, 'worker', worker)
  out[#out + 1] = {id, q, f[1], attempts, f[4] or '0', f[5] or '', f[6] or '', f[7] or '', f[9] or '0', f[10] or ''}
end

-- Claim one job from the queue; false when it has nothing (more) to give in this call.
local function take_one(entry)
  local q = entry.name
  local qkey, pkey = 'rq:queue:' .. q, 'taskrail:prio:' .. q
  if indexed[q] == nil then indexed[q] = redis.call('EXISTS', pkey) == 1 end
  if entry.limit > 0 and window_room('taskrail:rl:q:' .. q, entry.limit, entry.period) <= 0 then
    if redis.call('LLEN', qkey) > 0 then limited[q] = true; note_wait(waits['taskrail:rl:q:' .. q]) end
    return false
  end
  local aside = set_aside[q]
  while #aside < MAX_SET_ASIDE do
    local id = redis.call('LPOP', qkey)
    if not id then
      if indexed[q] and #aside == 0 then redis.call('DEL', pkey) end
      return false
    end
    local jkey = 'rq:job:' .. id
    local f = redis.call('HMGET', jkey, 'data', 'status', 'tr_attempts', 'tr_retries', 'timeout', 'result_ttl',
      'failure_ttl', 'tr_task', 'tr_stalls', 'tr_flow', 'tr_rate', 'tr_limit_key', 'tr_conc')
    if f[1] and f[2] ~= 'canceled' and f[2] ~= 'finished' then
      local attempts = (tonumber(f[3]) or 0) + 1
      local bounded = entry.limit > 0 or (f[11] and f[11] ~= '') or (f[13] and f[13] ~= '')
      if not bounded then
        if indexed[q] then redis.call('ZREM', pkey, id) end
        claim(entry, id, jkey, f, attempts)
        return true
      end
      if #out > 0 then  -- a bounded job starts a batch of its own: keep its place for the next claim
        aside[#aside + 1] = id
        stop = true
        return false
      end
      local w = try_limits(entry, id, jkey, f[8] or '', f[11], f[12], f[13], id .. ':' .. attempts)
      if w == 0 then
        if indexed[q] then redis.call('ZREM', pkey, id) end
        claim(entry, id, jkey, f, attempts)
        stop = true
        return true
      end
      aside[#aside + 1] = id
      limited[q] = true
      note_wait(w)
      if entry.limit > 0 and room['taskrail:rl:q:' .. q] == 0 then return false end
    elseif indexed[q] then
      redis.call('ZREM', pkey, id)
    end
  end
  return false
end

if weighted then
  local state = 'taskrail:wrr:' .. worker
  local names = {}
  for i, e in ipairs(queues) do names[i] = e.name end
  local credit = redis.call('HMGET', state, unpack(names))
  for i, e in ipairs(queues) do e.credit = tonumber(credit[i]) or 0 end
  while #out < count and not stop do
    local total, best = 0, nil
    for _, e in ipairs(queues) do
      if e.open then
        e.credit = e.credit + e.weight
        total = total + e.weight
        if best == nil or e.credit > best.credit then best = e end
      end
    end
    if best == nil then break end
    if take_one(best) then
      best.credit = best.credit - total
    else
      for _, e in ipairs(queues) do if e.open then e.credit = e.credit - e.weight end end
      best.open = false
    end
  end
  local flat = {}
  for _, e in ipairs(queues) do flat[#flat + 1] = e.name; flat[#flat + 1] = e.credit end
  redis.call('HSET', state, unpack(flat))
  redis.call('EXPIRE', state, 86400)
else
  for _, e in ipairs(queues) do
    while e.open and #out < count and not stop do
      if not take_one(e) then e.open = false end
    end
    if #out >= count or stop then break end
  end
end

-- Jobs set aside go back to the front of their queues, in their order.
for q, aside in pairs(set_aside) do
  for i = #aside, 1, -1 do redis.call('LPUSH', 'rq:queue:' .. q, aside[i]) end
end
if #out == 0 then  -- wake-up tokens for jobs that must wait would only make workers spin
  for q, _ in pairs(limited) do redis.call('DEL', 'taskrail:wake:' .. q) end
end
out[#out + 1] = math.ceil(wait * 1000)
return out
"""
)


def claim_call(worker: str, queues: list[str], count: int, now: float, now_text: str, score: float,
               maxlen: int, settings: Settings) -> tuple[list[str], list[Any]]:  # fmt: skip
    """KEYS and ARGV for one CLAIM of up to ``count`` jobs from ``queues`` (in priority order).

    Raises:
        ConfigError: malformed queue weights or rate limits in ``settings``.
    """
    policy = policy_for(settings)
    worker_count, worker_period = policy.worker_limit or (0, 0.0)
    args: list[Any] = [worker, count, now, now_text, score, maxlen, "weighted" if policy.weighted else "strict"]
    args += [worker_count, worker_period, *policy.queue_args(queues)]
    return [keys.CLAIMS.format(worker), keys.PAUSED, *queues], args


def claim_reply(reply: list[Any]) -> tuple[list[Any], float]:
    """Split CLAIM's reply into the claimed rows and the seconds until a limited job may start (0 = none)."""
    if not reply or not isinstance(reply[-1], int):
        return list(reply or []), 0.0
    return list(reply[:-1]), reply[-1] / 1000
