"""The environment variables the runner sets for RQ's test processes and its plugin reads (no pytest import here)."""

from __future__ import annotations

__all__ = ["MODES", "MODE_ENV", "PORT_ENV", "TIMEOUT_ENV"]

# Not ``TASKRAIL_*``: taskrail's settings reject unknown variables of their own prefix.
MODE_ENV = "RQSUITE_MODE"  # "rq" or "taskrail"
PORT_ENV = "RQSUITE_PORT"  # the private server's port, instead of RQ's tests' localhost:6379
TIMEOUT_ENV = "RQSUITE_TEST_TIMEOUT_S"  # the watchdog's limit for one test
MODES = ("rq", "taskrail")
