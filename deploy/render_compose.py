"""The Compose target: Redis, the dashboard and one worker service per queue, in one ``compose.yaml``.

Values that are secret (``SENTRY_DSN``, ``SMTP_URL``, the dashboard password) are never written into
the file: Compose takes them from the environment or an ``.env`` file next to it when it starts.
"""

from __future__ import annotations

from typing import Any

from config.scaling import Profile
from deploy.output import header, to_yaml
from deploy.workload import Workload

__all__ = ["compose_files"]

REDIS_IMAGE = "valkey/valkey:8.1-alpine"
DASHBOARD_PORT = 9181
DASHBOARD_ARGS = ("taskrail", "dashboard", "--host", "0.0.0.0", "--port", str(DASHBOARD_PORT))
# Compose interpolation: taken from the operator's environment or .env, never from this file.
REDIS_PASSWORD = (
    "${REDIS_PASSWORD:?set REDIS_PASSWORD (URL-safe, e.g. openssl rand -hex 24) in the environment or .env}"
)
REDIS_URL = "${REDIS_URL:-redis://:${REDIS_PASSWORD}@redis:6379/0}"
# Append-only persistence and noeviction: a job is never silently dropped. Size maxmemory per docs/deploy.md.
REDIS_COMMAND = ["valkey-server", "--appendonly", "yes", "--appendfsync", "everysec",
                 "--maxmemory", "${REDIS_MAXMEMORY:-1gb}", "--maxmemory-policy", "noeviction",
                 "--requirepass", REDIS_PASSWORD]  # fmt: skip
# Plain HTTP: published on this machine only; put a TLS proxy in front to reach it from elsewhere.
DASHBOARD_PUBLISH = f"127.0.0.1:{DASHBOARD_PORT}:{DASHBOARD_PORT}"
PASSTHROUGH = ("SENTRY_DSN", "SMTP_URL", "TASKRAIL_IMPORTS")  # null: the caller's value, or unset


def compose_files(profile: Profile, specs: tuple[Workload, ...], image: str) -> dict[str, str]:
    """``compose.yaml`` for ``profile``."""
    services: dict[str, Any] = {"redis": _redis(), "dashboard": _dashboard(profile, image)}
    for spec in specs:
        services[f"worker-{spec.slug}"] = _worker(spec, image)
    document = {
        "name": "taskrail",
        "services": services,
        "volumes": {"redis-data": {}},
    }
    notes = (
        "Start: docker compose up -d (needs TASKRAIL_DASHBOARD_PASSWORD in the environment or .env).",
        "Replicas come from each queue's `workers`; Compose does not autoscale (see docs/deploy.md).",
    )
    return {"compose.yaml": header(profile, "compose", notes) + to_yaml(document)}


def _common_env() -> dict[str, Any]:
    env: dict[str, Any] = {"REDIS_URL": REDIS_URL}
    env.update(dict.fromkeys(PASSTHROUGH))
    return env


def _redis() -> dict[str, Any]:
    return {
        "image": REDIS_IMAGE,
        "command": REDIS_COMMAND,
        "environment": {"REDISCLI_AUTH": REDIS_PASSWORD},  # for valkey-cli: the health check, docker exec
        "volumes": ["redis-data:/data"],
        "healthcheck": {
            "test": ["CMD-SHELL", "valkey-cli ping | grep -q PONG"],  # NOAUTH also exits 0
            "interval": "5s",
            "timeout": "3s",
            "retries": 5,
            "start_period": "5s",
        },
        "restart": "unless-stopped",
    }


def _depends_on_redis() -> dict[str, Any]:
    return {"redis": {"condition": "service_healthy"}}


def _dashboard(profile: Profile, image: str) -> dict[str, Any]:
    env = {**_common_env(), "TASKRAIL_PROFILE": profile.name}
    env["TASKRAIL_DASHBOARD_PASSWORD"] = (
        "${TASKRAIL_DASHBOARD_PASSWORD:?set TASKRAIL_DASHBOARD_PASSWORD in the environment or .env}"
    )
    env["TASKRAIL_DASHBOARD_ALLOWED_HOSTS"] = None  # the names it is reached by beyond localhost and addresses
    return {
        "image": image,
        # Other services reach it by its service name; a browser by localhost, an address, or the listed names.
        "command": [*DASHBOARD_ARGS, "--allowed-host", "dashboard"],
        "environment": env,
        "ports": [DASHBOARD_PUBLISH],
        "depends_on": _depends_on_redis(),
        "healthcheck": {"test": ["CMD", "taskrail", "health"], "interval": "30s", "timeout": "5s", "retries": 3},
        "restart": "unless-stopped",
    }


def _worker(spec: Workload, image: str) -> dict[str, Any]:
    env = {**_common_env(), **spec.environment}
    # `$$` is a literal `$` for Compose: the shell in the container expands the hostname.
    command = " ".join(_quote(arg) for arg in spec.command("$$(hostname)"))
    return {
        "image": image,
        "command": ["sh", "-c", f"exec {command}"],
        "environment": env,
        "init": True,
        "depends_on": _depends_on_redis(),
        "deploy": {
            "replicas": spec.replicas,
            "resources": {
                "limits": {"memory": f"{spec.memory_limit_mb}M"},
                "reservations": {"memory": f"{spec.memory_request_mb}M"},
            },
        },
        "stop_signal": "SIGTERM",
        "stop_grace_period": f"{spec.grace_s}s",
        "healthcheck": {
            "test": ["CMD", "taskrail", "health", "--this-host"],
            "interval": "15s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "20s",
        },
        "restart": "unless-stopped",
    }


def _quote(arg: str) -> str:
    return f'"{arg}"' if "$" in arg else arg
