-- Writes a batch script makes once per key instead of once per job (finish settles a batch: its
-- counters, registry members and TTLs are the same few keys for every job). A tally gathers them;
-- tally_flush writes them at the end of the script, which is atomic, so nothing else ever sees the
-- gap. Every helper takes the tally first and, when it is nil (a script that settles one job at a
-- time, like reap), writes at once: callers need not tell the two apart.
-- new_tally(): an empty tally.
-- tally_incr(t, key, field, n, set, member): HINCRBY key field n; when the field did not exist before
--   (the flush's HINCRBY returns exactly the sum it added), SADD set member (set optional).
-- tally_expire(t, key, seconds): EXPIRE key seconds, once, after the counters (which create the key).
-- tally_zadd(t, key, score, member), tally_zrem(t, key, member): one ZADD / ZREM per key.
-- tally_flush(t): write it all: ZREM, ZADD, then the counters, then the TTLs, each key in the order
--   first seen.

local function new_tally()
  return {incr = {}, incr_keys = {}, expire = {}, expire_keys = {}, zadd = {}, zadd_keys = {}, zrem = {},
    zrem_keys = {}}
end

-- The entry of key in t[kind], made (and its key listed in first-seen order) on first use.
local function tally_entry(t, kind, key)
  local entry = t[kind][key]
  if not entry then
    entry = {}
    t[kind][key] = entry
    local keys = t[kind .. '_keys']
    keys[#keys + 1] = key
  end
  return entry
end

local function tally_incr(t, key, field, n, set, member)
  if not t then
    if redis.call('HINCRBY', key, field, n) == n and set then redis.call('SADD', set, member) end
    return
  end
  local entry = tally_entry(t, 'incr', key)
  local counter = entry[field]
  if not counter then
    counter = {field = field, n = 0}
    entry[field] = counter
    entry[#entry + 1] = counter
  end
  counter.n = counter.n + n
  if set then counter.set, counter.member = set, member end
end

local function tally_expire(t, key, seconds)
  if not t then
    redis.call('EXPIRE', key, seconds)
    return
  end
  tally_entry(t, 'expire', key)
  t.expire[key].seconds = seconds
end

local function tally_zadd(t, key, score, member)
  if not t then
    redis.call('ZADD', key, score, member)
    return
  end
  local entry = tally_entry(t, 'zadd', key)
  entry[#entry + 1] = score
  entry[#entry + 1] = member
end

local function tally_zrem(t, key, member)
  if not t then
    redis.call('ZREM', key, member)
    return
  end
  local entry = tally_entry(t, 'zrem', key)
  entry[#entry + 1] = member
end

-- unpack takes at most a few thousand values at once (Lua's C stack): write long lists in slices.
local SLICE = 2000
local function call_sliced(cmd, key, values)
  for i = 1, #values, SLICE do
    redis.call(cmd, key, unpack(values, i, math.min(i + SLICE - 1, #values)))
  end
end

local function tally_flush(t)
  for _, key in ipairs(t.zrem_keys) do call_sliced('ZREM', key, t.zrem[key]) end
  for _, key in ipairs(t.zadd_keys) do call_sliced('ZADD', key, t.zadd[key]) end
  for _, key in ipairs(t.incr_keys) do
    for _, counter in ipairs(t.incr[key]) do
      if counter.n ~= 0 and redis.call('HINCRBY', key, counter.field, counter.n) == counter.n and counter.set then
        redis.call('SADD', counter.set, counter.member)
      end
    end
  end
  for _, key in ipairs(t.expire_keys) do redis.call('EXPIRE', key, t.expire[key].seconds) end
end
