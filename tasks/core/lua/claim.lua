-- claim: take up to count jobs for this worker, in queue order (strict: first non-empty queue in the
-- worker's order; weighted: smooth weighted round robin, its credit kept per worker) and inside a
-- queue in priority order (its lists, includes/queue_push: one ZRANGE per queue and call), skipping paused
-- queues and dropping canceled or finished jobs. A job over a rate limit or concurrency cap is set
-- aside and put back at the front of its queue, in its place; a limited job is claimed only as a
-- batch of its own. Claimed jobs become RQ's started jobs: status started, in the started registry
-- (K.wip, member id:worker), and in this worker's claims hash.
-- Poison jobs never raise after the pop (that would lose them). Each popped job's fields are checked
-- before any write that depends on them: a job that cannot run (no data, data over the byte limit,
-- which is not even read, or a tr_*, timeout or TTL field that is not what taskrail writes) is claimed
-- without its limits and returned with the reason, and the worker fails it through FINISH. A job
-- whose id is not UTF-8 is failed here (status failed, the reason, its hash expiring after the failure
-- TTL; kept out of the registries, whose members every tool reads as text). An id without a job
-- hash is dropped, as RQ does, with an event.
-- KEYS[1]  claims hash of the worker (K.claims .. worker)
-- KEYS[2]  paused queues set (keys.PAUSED)
-- KEYS[3..] queue names (not keys), in the worker's priority order
-- ARGV     worker, count, now, now_text ('' = the server's time: a claim queued behind a blocking wait),
--          wip score, maxlen, mode (strict | weighted), worker limit count (0 = none), worker limit
--          period, data limit (bytes), default failure TTL (s), then per queue: weight, limit count
--          (0 = none), limit period, then optionally a JSON object of rate limit overrides (task ->
--          'count/period', '' = no limit) replacing the jobs' tr_rate (else the worker's own, K.rate_overrides)
-- Reply    nothing claimed ({0}) while RQ's suspension key exists or the worker recorded its stop; else claimed rows {id, queue, data, attempts, retries, timeout, result_ttl, failure_ttl, stalls,
--          flow, poison, callbacks}, poison the reason a job cannot run ('' = it can; its data is then
--          ''), callbacks the RQ callbacks the job has ('' = none; s success, f failure, t stopped; r:
--          RQ's Retry has retries left, so a failure is settled as kind rq_retry; p: RQ's Repeat has
--          repeats left, so a success is settled as kind rq_repeat), and for a job with RQ's on_success two
--          more: its success_callback_name and success_callback_timeout ('' = RQ's default); then
--          the milliseconds until a limited job may start (0 = none waits)
-- Events   started, per claimed job; failed, per job failed here (its id printable, \xNN escapes);
--          dropped, per id without a job hash
-- Keys     K.queue, K.queue_level, K.levels, K.job, K.wip, K.events, K.wake, K.weights, K.rate_worker, K.rate_queue,
--          K.rate_task, K.concurrency, K.workers (the claiming worker joins the worker set), K.rq_worker (its state),
--          K.rate_overrides, K.rq_suspended
local worker, count, now_text, score, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5], ARGV[6]
local weighted = ARGV[7] == 'weighted'
local data_limit, default_failure_ttl = tonumber(ARGV[10]), tonumber(ARGV[11])
if not (data_limit and default_failure_ttl) then  -- before the first write or pop
  return redis.error_reply('claim: ARGV[10] (data limit, bytes) and ARGV[11] (failure TTL, s) must be numbers')
end
if not tonumber(score) then  -- the ZADD that takes it comes after the pops
  return redis.error_reply('claim: ARGV[5] (the started registry score) must be a number')
end
--- @include "keys"
-- RQ's suspension (rq suspend) holds every claim, this one too: it may have been sent before it began
-- (queued behind the worker's blocking wait).
if redis.call('EXISTS', K.rq_suspended) == 1 then return {0} end
-- So does the worker's own stop, once recorded as RQ's shutdown_requested_date (workers/stopping.py): a job is
-- claimed before the server knew of the stop, and runs, or stays in its queue.
if redis.call('HEXISTS', K.rq_worker .. worker, 'shutdown_requested_date') == 1 then return {0} end
-- The worker's runtime rate limits (taskrail control rate_limit): read here, not sent, so that a claim sent
-- before they changed (queued behind a wait) still applies them. An ARGV object replaces them (tests, tools).
local overrides = ARGV[12 + (#KEYS - 2) * 3] or redis.call('GET', K.rate_overrides .. worker)
if overrides then
  local ok, decoded = pcall(cjson.decode, overrides)
  if not ok or type(decoded) ~= 'table' then return redis.error_reply('claim: rate overrides must be a JSON object') end
  overrides = decoded
end
--- @include "includes/limits"
--- @include "includes/queue_push"
--- @include "includes/tally"
--- @include "includes/rq_time"

local t = redis.call('TIME')
local lim = {snow = tonumber(t[1]) + tonumber(t[2]) / 1000000, room = {}, waits = {}}

if now_text == '' then now_text = rq_time_text(tonumber(t[1]), tonumber(t[2])) end

local MAX_SET_ASIDE = 100  -- limited jobs looked past per queue and claim; beyond, wait for the next claim
local out, wait, stop = {}, 0, false
local set_aside, limited = {}, {}
-- The started registry's members and the claims hash's fields, written once per call at the end.
local started, claims = new_tally(), {}
local function note_wait(w) if w and w > 0 and (wait == 0 or w < wait) then wait = w end end

-- per-worker limit: claim no more than its window has room for
local wkey, wlimit, wperiod = K.rate_worker .. worker, tonumber(ARGV[8]), tonumber(ARGV[9])
if wlimit > 0 then
  count = math.min(count, window_room(lim, wkey, wlimit, wperiod))
  if count <= 0 then return {math.ceil(lim.waits[wkey] * 1000)} end
end

local queues = {}
for i = 3, #KEYS do
  local q, a = KEYS[i], 12 + (i - 3) * 3
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

-- The job fields the claim reads: f[1] data ('' when over data_limit: not read), f[2..18] these.
local FIELDS = {'status', 'tr_attempts', 'tr_retries', 'timeout', 'result_ttl', 'failure_ttl', 'tr_task',
  'tr_stalls', 'tr_flow', 'tr_rate', 'tr_limit_key', 'tr_conc', 'success_callback_name', 'failure_callback_name',
  'stopped_callback_name', 'retries_left', 'repeats_left'}
local COUNTS, SECONDS = {3, 4, 9}, {5, 6, 7}  -- f indexes of tr_attempts, tr_retries, tr_stalls; timeout, TTLs
local function read_job(jkey)
  local size = redis.call('HSTRLEN', jkey, 'data')
  if size <= data_limit then return redis.call('HMGET', jkey, 'data', unpack(FIELDS)), size end
  local f = redis.call('HMGET', jkey, unpack(FIELDS))
  table.insert(f, 1, '')
  return f, size
end

-- A count field (attempts, retries, stalls) as a number: absent is 0, anything but up to 9 digits is nil.
local function count_of(v)
  if not v or v == '' then return 0 end
  if #v <= 9 and string.match(v, '^%d+$') then return tonumber(v) end
end

-- timeout and TTLs: absent, or a whole number of seconds (-1: none) of up to 9 characters (31 years;
-- a longer time limit cannot even be armed)
local function seconds_ok(v)
  return not v or v == '' or (#v <= 9 and string.match(v, '^%-?%d+$') ~= nil)
end

local function rate_ok(v)  -- tr_rate: 'count/period', 1 to 999999999 starts per 0 to 1e9 seconds
  local n, p = string.match(v, '^(%d+)/([%d.e+-]+)$')
  n, p = tonumber(n), tonumber(p)
  return n ~= nil and p ~= nil and n >= 1 and n < 1e9 and p > 0 and p <= 1e9
end

local function flow_ok(v)  -- tr_flow: a JSON object
  if #v > 65536 then return false end
  local ok, spec = pcall(cjson.decode, v)
  return ok and type(spec) == 'table'
end

local function printable(id)
  return (string.gsub(id, '[^\32-\126]', function(c) return string.format('\\x%02x', string.byte(c)) end))
end

local BY_HAND = '; taskrail writes it, so this job hash was written or changed by hand'
local function bad(name, v, want)
  return name .. " is '" .. printable(string.sub(v, 1, 40)) .. "', not " .. want .. BY_HAND
end

-- Why a popped job cannot run, or nil. size is its data's length in bytes.
local function poison_reason(f, size)
  if size > data_limit then
    return 'job data is ' .. size .. ' bytes, over the ' .. data_limit .. '-byte limit; pass a reference '
      .. '(a file path, URL or database id) instead of the data'
  end
  if not f[1] then return 'job has no data' end
  for _, i in ipairs(COUNTS) do
    if not count_of(f[i]) then return bad(FIELDS[i - 1], f[i], 'a whole number of up to 9 digits') end
  end
  for _, i in ipairs(SECONDS) do
    if not seconds_ok(f[i]) then return bad(FIELDS[i - 1], f[i], 'a whole number of seconds of up to 9 digits') end
  end
  if f[8] and #f[8] > 1000 then return 'tr_task is ' .. #f[8] .. ' bytes long, over 1000' .. BY_HAND end
  if f[10] and f[10] ~= '' and not flow_ok(f[10]) then return bad('tr_flow', f[10], 'a JSON object') end
  if f[11] and f[11] ~= '' and not rate_ok(f[11]) then
    return bad('tr_rate', f[11], "'count/seconds' with a count of at least 1 and seconds above 0")
  end
  if f[12] and #f[12] > 1000 then return 'tr_limit_key is ' .. #f[12] .. ' bytes long, over 1000' .. BY_HAND end
  if f[13] and f[13] ~= '' and not ((count_of(f[13]) or 0) >= 1) then
    return bad('tr_conc', f[13], 'a whole number of at least 1')
  end
end

-- Whether s is valid UTF-8 (what the worker decodes a job id as).
local function is_utf8(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len, lo, hi = 1, 128, 191
    if c >= 194 and c <= 223 then len = 2
    elseif c >= 224 and c <= 239 then
      len = 3
      if c == 224 then lo = 160 elseif c == 237 then hi = 159 end
    elseif c >= 240 and c <= 244 then
      len = 4
      if c == 240 then lo = 144 elseif c == 244 then hi = 143 end
    elseif c >= 128 then return false end
    for k = 1, len - 1 do
      local b = string.byte(s, i + k)
      if not b or b < (k == 1 and lo or 128) or b > (k == 1 and hi or 191) then return false end
    end
    i = i + len
  end
  return true
end

-- A job whose id the worker cannot decode: failed here, kept out of the registries.
local function fail_here(q, id, jkey, f)
  local msg = 'job id ' .. printable(id) .. ' is not valid UTF-8, so no worker can run or settle it; '
    .. 'use ids of letters, digits, "-" and "_"'
  redis.call('HSET', jkey, 'status', 'failed', 'ended_at', now_text, 'tr_exc_type', 'InvalidJob', 'tr_exc_message', msg)
  local ttl = seconds_ok(f[7]) and tonumber(f[7]) or 0
  redis.call('EXPIRE', jkey, ttl > 0 and ttl or default_failure_ttl)
  redis.call('XADD', K.events .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'failed', 'job', printable(id),
    'task', '', 'worker', worker, 'error', 'InvalidJob')
end

-- Which RQ callbacks a job has, as one short column: only those jobs make the worker read them; r when
-- RQ's Retry has retries left for it (retries_left above 0), so that its failure is settled as a retry;
-- p when RQ's Repeat has repeats left (repeats_left above 0), so that its success is settled as a repeat.
local CALLBACK_FLAGS = {'s', 'f', 't'}  -- f[14..16]: success, failure, stopped callback names
local function callbacks_of(f)
  if not (f[14] or f[15] or f[16] or f[17] or f[18]) then return '' end  -- the common case
  local flags = ''
  for i, flag in ipairs(CALLBACK_FLAGS) do
    if f[13 + i] and f[13 + i] ~= '' then flags = flags .. flag end
  end
  if f[17] and (count_of(f[17]) or 0) > 0 then flags = flags .. 'r' end
  if f[18] and (count_of(f[18]) or 0) > 0 then flags = flags .. 'p' end
  return flags
end

local function claim(entry, id, jkey, f, attempts, poison)
  local q = entry.name
  redis.call('HSET', jkey, 'status', 'started', 'started_at', now_text, 'worker_name', worker,
    'last_heartbeat', now_text, 'tr_attempts', attempts)
  tally_zadd(started, K.wip .. q, score, id .. ':' .. worker)
  claims[#claims + 1] = id
  claims[#claims + 1] = q
  if wlimit > 0 then window_take(lim, wkey, wperiod, id .. ':' .. attempts) end
  local task = poison and '' or f[8] or ''
  redis.call('XADD', K.events .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'started', 'job', id,
    'task', task, 'worker', worker)
  if poison then  -- only what the worker needs to fail it; the bad fields stay behind
    out[#out + 1] = {id, q, '', attempts, '0', '-1', '', seconds_ok(f[7]) and f[7] or '', '0', '', poison, ''}
  else
    local row = {id, q, f[1], attempts, f[4] or '0', f[5] or '', f[6] or '', f[7] or '', f[9] or '0',
      f[10] or '', '', callbacks_of(f)}
    if f[14] and f[14] ~= '' then  -- RQ's on_success runs before the settle: its name and timeout come along
      row[13] = f[14]
      row[14] = redis.call('HGET', jkey, 'success_callback_timeout') or ''
    end
    out[#out + 1] = row
  end
end

-- Claim one job from the queue; false when it has nothing (more) to give in this call.
local function take_one(entry)
  local q = entry.name
  if not entry.cur then entry.cur = {lists = queue_lists(q), at = 1} end
  if entry.limit > 0 and window_room(lim, K.rate_queue .. q, entry.limit, entry.period) <= 0 then
    if #entry.cur.lists > 1 or redis.call('LLEN', K.queue .. q) > 0 then
      limited[q] = true
      note_wait(lim.waits[K.rate_queue .. q])
    end
    return false
  end
  local aside = set_aside[q]
  while #aside < MAX_SET_ASIDE do
    local id, list = pop_next(q, entry.cur)
    if not id then return false end
    local jkey = K.job .. id
    local f, size = read_job(jkey)
    if overrides and f[8] and overrides[f[8]] then f[11] = overrides[f[8]] end
    local poison = f[2] ~= 'canceled' and f[2] ~= 'finished' and poison_reason(f, size)
    if not f[1] and not f[2] and redis.call('EXISTS', jkey) == 0 then  -- RQ skips a missing job too
      redis.call('XADD', K.events .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'dropped', 'job', printable(id),
        'worker', worker, 'error', 'NoSuchJob')
    elseif not is_utf8(id) then
      fail_here(q, id, jkey, f)
    elseif poison then
      claim(entry, id, jkey, f, (count_of(f[3]) or 0) + 1, poison)
      return true
    elseif f[2] ~= 'canceled' and f[2] ~= 'finished' then
      local attempts = (tonumber(f[3]) or 0) + 1
      local bounded = entry.limit > 0 or (f[11] and f[11] ~= '') or (f[13] and f[13] ~= '')
      if not bounded then
        claim(entry, id, jkey, f, attempts)
        return true
      end
      if #out > 0 then  -- a bounded job starts a batch of its own: keep its place for the next claim
        aside[#aside + 1] = {id, list}
        stop = true
        return false
      end
      local w = try_limits(entry, id, jkey, f[8] or '', f[11], f[12], f[13], id .. ':' .. attempts)
      if w == 0 then
        claim(entry, id, jkey, f, attempts)
        stop = true
        return true
      end
      aside[#aside + 1] = {id, list}
      limited[q] = true
      note_wait(w)
      if entry.limit > 0 and lim.room[K.rate_queue .. q] == 0 then return false end
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

-- Jobs set aside go back to the front of their lists, in their order.
for q, aside in pairs(set_aside) do put_back(q, aside) end
if #out == 0 then  -- wake-up tokens for jobs that must wait would only make workers spin
  for q, _ in pairs(limited) do redis.call('DEL', K.wake .. q) end
end
-- Whoever holds claims is in the worker set, which is all the leader's recovery looks at: a worker
-- that was taken for dead (and removed) while it was only slow must not claim outside it.
if #out > 0 then
  redis.call('SADD', K.workers, worker)
  -- RQ's worker state: an idle worker that claims is busy (a claim sent behind its wait, in the same round
  -- trip, comes before the worker could say so itself)
  if redis.call('HGET', K.rq_worker .. worker, 'state') == 'idle' then
    redis.call('HSET', K.rq_worker .. worker, 'state', 'busy')
  end
  tally_flush(started)
  call_sliced('HSET', KEYS[1], claims)
end
out[#out + 1] = math.ceil(wait * 1000)
return out
