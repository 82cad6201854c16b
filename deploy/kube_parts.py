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
    "WORKER_ACCOUNT",
    "base_env",
    "env_from",
    "labels",
    "meta",
    "pod_security",
    "scratch_volumes",
    "secret_env",
    "security",
    "worker_rbac",
]

SECRET = "taskrail"  # keys: REDIS_URL (required), SENTRY_DSN, SMTP_URL, TASKRAIL_DASHBOARD_PASSWORD
CONFIG_MAP = "taskrail"  # optional: any other setting, e.g. TASKRAIL_IMPORTS
OPTIONAL_SECRETS = ("SENTRY_DSN", "SMTP_URL")
NAME = "taskrail"
UID = 10001  # the image's non-root user
DATA_DIR = "/app/data"  # the image's TASKRAIL_DATA_DIR: an emptyDir here
TMP_LIMIT, DATA_LIMIT = "256Mi", "512Mi"  # emptyDir sizeLimit: past it the kubelet evicts the pod
WORKER_ACCOUNT = f"{NAME}-worker"  # may patch pods: each worker sets its own deletion cost (workers/podcost.py)


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


def worker_rbac() -> list[dict[str, Any]]:
    """The workers' service account, allowed to patch pods in their namespace and nothing else.

    Each worker patches only its own pod's ``controller.kubernetes.io/pod-deletion-cost`` (busy pods are
    removed last on a scale-down); RBAC cannot name a pod the Deployment has not created yet, so the
    Role covers the namespace's pods, with ``patch`` only (no create, delete, exec or secrets).
    """
    account = meta(WORKER_ACCOUNT, "worker")
    role_name = f"{WORKER_ACCOUNT}-pod-deletion-cost"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(role_name, "worker"),
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(role_name, "worker"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": WORKER_ACCOUNT}],
    }
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account}, role, binding]
