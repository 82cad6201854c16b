"""The RQ settings module: ``rq worker -c config.rq`` and ``rq info -c config.rq`` read it.

RQ reads upper-case module attributes, so this module (alone in taskrail) resolves settings when
it is imported: ``REDIS_URL`` from the environment, else the embedded server's URL. A
``redis+sentinel://`` URL becomes RQ's ``SENTINEL`` setting instead, so workers follow a failover.
"""

from __future__ import annotations

from config.connection import redis_url
from config.sentinel import is_sentinel_url, parse_sentinel_url, rq_sentinel_settings
from config.settings import load_settings

_url = redis_url(load_settings())
if is_sentinel_url(_url):
    SENTINEL = rq_sentinel_settings(parse_sentinel_url(_url))
else:
    REDIS_URL = _url
