"""Which jobs a worker takes next: the CLAIM script and its arguments.

Queue order (strict priority or weights), pausing, priorities inside a queue and rate limits are
all decided here, inside one server-side script, so they hold across every worker and machine.
"""

from __future__ import annotations

from typing import Any

from tasks import keys

__all__ = ["CLAIM", "claim_call"]

# Take up to `count` jobs, highest-priority queue first, skipping paused queues and vanished or
# canceled jobs. Each becomes started in RQ's sense (status, started_at, worker, started registry)
# and is recorded in this worker's claims, so a crash can hand it back.
# KEYS: claims, paused, queue names... ARGV: worker, count, now, now_text, wip score, maxlen
CLAIM = """
local worker, count, now, now_text, score, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local out = {}
for i = 3, #KEYS do
  local q = KEYS[i]
  if #out >= count then break end
  if redis.call('SISMEMBER', KEYS[2], q) == 0 then
    local qkey = 'rq:queue:' .. q
    while #out < count do
      local id = redis.call('LPOP', qkey)
      if not id then break end
      local jkey = 'rq:job:' .. id
      local f = redis.call('HMGET', jkey, 'data', 'status', 'tr_attempts', 'tr_retries', 'timeout', 'result_ttl',
        'failure_ttl', 'tr_task', 'tr_stalls', 'tr_flow')
      if f[1] and f[2] ~= 'canceled' and f[2] ~= 'finished' then
        local attempts = (tonumber(f[3]) or 0) + 1
        redis.call('HSET', jkey, 'status', 'started', 'started_at', now_text, 'worker_name', worker,
          'last_heartbeat', now_text, 'tr_attempts', attempts)
        redis.call('ZADD', 'rq:wip:' .. q, score, id .. ':' .. worker)
        redis.call('HSET', KEYS[1], id, q)
        local task = f[8] or ''
        redis.call('XADD', 'taskrail:events:' .. q, 'MAXLEN', '~', maxlen, '*', 'event', 'started', 'job', id,
          'task', task, 'worker', worker)
        out[#out + 1] = {id, q, f[1], attempts, f[4] or '0', f[5] or '', f[6] or '', f[7] or '', f[9] or '0', f[10] or ''}
      end
    end
  end
end
return out
"""


def claim_call(worker: str, queues: list[str], count: int, now: float, now_text: str, score: float,
               maxlen: int) -> tuple[list[str], list[Any]]:  # fmt: skip
    """KEYS and ARGV for one CLAIM of up to ``count`` jobs from ``queues`` (in priority order)."""
    return [keys.CLAIMS.format(worker), keys.PAUSED, *queues], [worker, count, now, now_text, score, maxlen]
