"""The RQ settings module: ``rq worker -c config.rq`` and ``rq info -c config.rq`` read it.

RQ reads upper-case module attributes, so this module (alone in taskrail) resolves settings when
it is imported: ``REDIS_URL`` from the environment, else the embedded server's URL. A
``redis+sentinel://`` URL becomes RQ's ``SENTINEL`` setting instead, so workers follow a failover.
"""

from __future__ import annotations

import sys

from config.connection import redis_url
from config.errors import ConfigError, TaskrailError
from config.sentinel import is_sentinel_url, parse_sentinel_url, rq_sentinel_settings
from config.settings import load_settings

# workers.exitcodes' RET_CONFIG and RET_ERROR (config/ imports no workers module): the supervisor
# reads exit 2 as bad settings, which no restart fixes.
_RET_CONFIG, _RET_ERROR = 2, 1

try:
    _url = redis_url(load_settings())
except TaskrailError as exc:  # one line naming the setting and the fix, not a traceback from RQ's CLI
    print(f"taskrail: {exc}", file=sys.stderr)
    raise SystemExit(_RET_CONFIG if isinstance(exc, ConfigError) else _RET_ERROR) from None
if is_sentinel_url(_url):
    SENTINEL = rq_sentinel_settings(parse_sentinel_url(_url))
else:
    REDIS_URL = _url
