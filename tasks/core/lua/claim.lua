-- claim: take up to count jobs for this worker, in queue order (strict: first non-empty queue in the
-- worker's order; weighted: smooth weighted round robin, its credit kept per worker), skipping paused
-- queues and dropping canceled or finished jobs. A job over a rate limit or concurrency cap is set
-- aside and put back at the front of its queue, in its place; a limited job is claimed only as a
-- batch of its own. Claimed jobs become RQ's started jobs: status started, in the started registry
-- (K.wip, member id:worker), and in this worker's claims hash.
-- KEYS[1]  claims hash of the worker (K.claims .. worker)
-- KEYS[2]  paused queues set (keys.PAUSED)
-- KEYS[3..] queue names (not keys), in the worker's priority order
-- ARGV     worker, count, now, now_text, wip score, maxlen, mode (strict | weighted), worker limit
--          count (0 = none), worker limit period, then per queue: weight, limit count (0 = none),
--          limit period
-- Reply    claimed rows {id, queue, data, attempts, timeout, result_ttl, failure_ttl, task, stalls,
--          flow}, then the milliseconds until a limited job may start (0 = none waits)
-- Events   started, per claimed job
-- Keys     K.queue, K.prio, K.job, K.wip, K.events, K.wake, K.weights, K.rate_worker, K.rate_queue,
--          K.rate_task, K.concurrency
local worker, count, now_text, score, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5], ARGV[6]
local weighted = ARGV[7] == 'weighted'
--- @include "keys"
--- @include "includes/limits"

local t = redis.call('TIME')
local lim = {snow = tonumber(t[1]) + tonumber(t[2]) / 1000000, room = {}, waits = {}}

local MAX_SET_ASIDE = 100  -- limited jobs looked past per queue and claim; beyond, wait for the next claim
local out, wait, stop = {}, 0, false
local set_aside, limited, indexed = {}, {}, {}
local function note_wait(w) if w and w > 0 and (wait == 0 or w < wait) then wait = w end end

-- per-worker limit: claim no more than its window has room for
local wkey, wlimit, wperiod = K.rate_worker .. worker, tonumber(ARGV[8]), tonumber(ARGV[9])
if wlimit > 0 then
  count = math.min(count, window_room(lim, wkey, wlimit, wperiod))
  if count <= 0 then return {math.ceil(lim.waits[wkey] * 1000)} end
end

local queues = {}
for i = 3, #KEYS do
  local q, a = KEYS[i], 10 + (i - 3) * 3
  local entry = {name = q, weight = tonumber(ARGV[a]), limit = tonumber(ARGV[a + 1]), period = tonumber(ARGV[a + 2])}
  entry.open = redis.call('SISMEMBER', KEYS[2], q) == 0
  if not entry.open then redis.call('DEL', K.wake .. q) end
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
    if n then tkey, tn, tp = K.rate_task .. suffix, tonumber(n), tonumber(p) end
  end
  if tkey and window_room(lim, tkey, tn, tp) <= 0 then return lim.waits[tkey] end
  local ckey
  if conc and conc ~= '' then
    ckey = K.concurrency .. suffix
    if slot_room(lim, ckey, tonumber(conc)) <= 0 then return -1 end
  end
  if entry.limit > 0 then window_take(lim, K.rate_queue .. entry.name, entry.period, member) end
  if tkey then window_take(lim, tkey, tp, member) end
  if ckey then slot_take(lim, ckey, id, jkey) end
  return 0
end

local function claim(entry, id, jkey, f, attempts)
  local q = entry.name
  redis.call('HSET', jkey, 'status', 'started', 'started_at', now_text, 'worker_name', worker,
    'last_heartbeat', now_text, 'tr_attempts', attempts)
  redis.call('ZADD', K.wip .. q, score, id .. ':' .. worker)
  redis.call('HSET', KEYS[1], id, q)
  if wlimit > 0 then window_take(lim, wkey, wperiod, id .. ':' .. attempts) end
  local task = f[8] or ''
  redis.call('XADD', K.events .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'started', 'job', id,
    'task', task, 'worker', worker)
  out[#out + 1] = {id, q, f[1], attempts, f[4] or '0', f[5] or '', f[6] or '', f[7] or '', f[9] or '0', f[10] or ''}
end

-- Claim one job from the queue; false when it has nothing (more) to give in this call.
local function take_one(entry)
  local q = entry.name
  local qkey, pkey = K.queue .. q, K.prio .. q
  if indexed[q] == nil then indexed[q] = redis.call('EXISTS', pkey) == 1 end
  if entry.limit > 0 and window_room(lim, K.rate_queue .. q, entry.limit, entry.period) <= 0 then
    if redis.call('LLEN', qkey) > 0 then limited[q] = true; note_wait(lim.waits[K.rate_queue .. q]) end
    return false
  end
  local aside = set_aside[q]
  while #aside < MAX_SET_ASIDE do
    local id = redis.call('LPOP', qkey)
    if not id then
      if indexed[q] and #aside == 0 then redis.call('DEL', pkey) end
      return false
    end
    local jkey = K.job .. id
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
      if entry.limit > 0 and lim.room[K.rate_queue .. q] == 0 then return false end
    elseif indexed[q] then
      redis.call('ZREM', pkey, id)
    end
  end
  return false
end

if weighted then
  local state = K.weights .. worker
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
  for i = #aside, 1, -1 do redis.call('LPUSH', K.queue .. q, aside[i]) end
end
if #out == 0 then  -- wake-up tokens for jobs that must wait would only make workers spin
  for q, _ in pairs(limited) do redis.call('DEL', K.wake .. q) end
end
out[#out + 1] = math.ceil(wait * 1000)
return out
