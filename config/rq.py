"""The RQ settings module: ``rq worker -c config.rq`` and ``rq info -c config.rq`` read it.

RQ reads upper-case module attributes, so this module (alone in taskrail) resolves settings when
it is imported: ``REDIS_URL`` from the environment, else the embedded server's URL.
"""

from __future__ import annotations

from config.connection import redis_url
from config.settings import load_settings

REDIS_URL = redis_url(load_settings())
