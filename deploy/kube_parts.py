"""Pieces every rendered Kubernetes object shares: names, labels, Secret references, security contexts.

Used by deploy/render_kubernetes.py (workers, KEDA) and deploy/render_services.py (dashboard, metrics).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONFIG_MAP",
    "DATA_DIR",
    "NAME",
    "SECRET",
    "base_env",
    "env_from",
    "labels",
    "meta",
    "pod_security",
    "scratch_volumes",
    "secret_env",
    "security",
]

SECRET = "taskrail"  # keys: REDIS_URL (required), SENTRY_DSN, SMTP_URL, TASKRAIL_DASHBOARD_PASSWORD
CONFIG_MAP = "taskrail"  # optional: any other setting, e.g. TASKRAIL_IMPORTS
OPTIONAL_SECRETS = ("SENTRY_DSN", "SMTP_URL")
NAME = "taskrail"
UID = 10001  # the image's non-root user
DATA_DIR = "/app/data"  # the image's TASKRAIL_DATA_DIR: an emptyDir here
TMP_LIMIT, DATA_LIMIT = "256Mi", "512Mi"  # emptyDir sizeLimit: past it the kubelet evicts the pod


def meta(name: str, component: str) -> dict[str, Any]:
    return {"name": name, "labels": labels(component)}


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": component}


def secret_env(key: str, *, optional: bool) -> dict[str, Any]:
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key, "optional": optional}}}


def base_env() -> list[dict[str, Any]]:
    env = [secret_env("REDIS_URL", optional=False)]
    env += [secret_env(key, optional=True) for key in OPTIONAL_SECRETS]
    return env


def env_from() -> list[dict[str, Any]]:
    """Non-secret settings (TASKRAIL_IMPORTS, ...) from an optional ConfigMap; `env` entries win."""
    return [{"configMapRef": {"name": CONFIG_MAP, "optional": True}}]


def security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable /tmp and data dir on a read-only root filesystem, bounded: the data dir holds the email
    outbox when no SMTP_URL is set, and a full node disk would evict every pod on it."""
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_LIMIT}},
        {"name": "data", "emptyDir": {"sizeLimit": DATA_LIMIT}},
    ]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": DATA_DIR}]
    return volumes, mounts
