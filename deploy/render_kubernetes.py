"""The Kubernetes target: per queue a Deployment, a PodDisruptionBudget and (with autoscale) a KEDA
``ScaledObject``; the dashboard's Deployment and Service; a ``kustomization.yaml`` tying them together.

Kubernetes is the supervisor here: each pod runs one worker process, restarts come from the
Deployment and scaling from ``replicas`` or KEDA. Secrets are referenced by name, never inlined.
"""

from __future__ import annotations

from typing import Any

from config.scaling import Profile
from deploy.output import header, to_yaml
from deploy.workload import PRESTOP_S, Workload
from tasks.core import keys

__all__ = ["CONFIG_MAP", "DEFAULT_BACKLOG_PER_WORKER", "KEDA_SECRET", "SECRET", "kubernetes_files"]

SECRET = "taskrail"  # keys: REDIS_URL (required), SENTRY_DSN, SMTP_URL, TASKRAIL_DASHBOARD_PASSWORD
CONFIG_MAP = "taskrail"  # optional: any other setting, e.g. TASKRAIL_IMPORTS
KEDA_SECRET = "taskrail-keda"  # keys: redis-address (host:port), redis-password
OPTIONAL_SECRETS = ("SENTRY_DSN", "SMTP_URL")
DASHBOARD_PORT = 9181
DASHBOARD_ARGS = ("taskrail", "dashboard", "--host", "0.0.0.0", "--port", str(DASHBOARD_PORT))
DEFAULT_BACKLOG_PER_WORKER = 100  # KEDA needs a list length; used when a queue scales on wait time only
POLLING_INTERVAL_S = 15
NAME = "taskrail"
UID = 10001  # the image's non-root user
TMP_LIMIT, DATA_LIMIT = "256Mi", "512Mi"  # emptyDir sizeLimit: past it the kubelet evicts the pod


def kubernetes_files(profile: Profile, specs: tuple[Workload, ...], image: str) -> dict[str, str]:
    """One file per queue plus the dashboard, KEDA's authentication and the kustomization."""
    files: dict[str, str] = {}
    top = header(profile, "kubernetes", ("Apply: kubectl apply -k <this directory> (Secrets first: docs/deploy.md).",))
    files["dashboard.yaml"] = top + to_yaml(_dashboard_deployment(profile, image), _dashboard_service())
    scaled = [spec for spec in specs if spec.autoscale]
    if scaled:
        files["keda-auth.yaml"] = top + to_yaml(_trigger_auth())
    for spec in specs:
        documents = [_deployment(spec, image), _pdb(spec)]
        if spec.autoscale:
            documents.append(_scaled_object(spec))
        files[f"worker-{spec.slug}.yaml"] = top + to_yaml(*documents)
    files["kustomization.yaml"] = top + to_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "labels": [{"pairs": {"app.kubernetes.io/part-of": NAME}}],
            "resources": sorted(files),
        }
    )
    return files


def _meta(name: str, component: str) -> dict[str, Any]:
    return {"name": name, "labels": _labels(component)}


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": component}


def _secret_env(key: str, *, optional: bool) -> dict[str, Any]:
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key, "optional": optional}}}


def _base_env() -> list[dict[str, Any]]:
    env = [_secret_env("REDIS_URL", optional=False)]
    env += [_secret_env(key, optional=True) for key in OPTIONAL_SECRETS]
    return env


def _env_from() -> list[dict[str, Any]]:
    """Non-secret settings (TASKRAIL_IMPORTS, ...) from an optional ConfigMap; `env` entries win."""
    return [{"configMapRef": {"name": CONFIG_MAP, "optional": True}}]


def _security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _scratch_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable /tmp and data dir on a read-only root filesystem, bounded: the data dir holds the email
    outbox when no SMTP_URL is set, and a full node disk would evict every pod on it."""
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_LIMIT}},
        {"name": "data", "emptyDir": {"sizeLimit": DATA_LIMIT}},
    ]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": "/app/data"}]
    return volumes, mounts


def _exec_probe(command: list[str], period_s: int, failures: int, timeout_s: int = 5) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
    }


def _deployment(spec: Workload, image: str) -> dict[str, Any]:
    component = f"worker-{spec.slug}"
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, *_base_env()]
    env += [{"name": key, "value": value} for key, value in spec.environment.items()]
    volumes, mounts = _scratch_volumes()
    health = ["taskrail", "health", "--this-host"]
    container = {
        "name": "worker",
        "image": image,
        # The pod's hostname is its name, so the worker is `<pod>.<queue>.0` and the probes find it.
        # `args`, not `command`: the image's ENTRYPOINT (tini) stays PID 1 and reaps orphans.
        "args": spec.command("$(POD_NAME)"),
        "envFrom": _env_from(),
        "env": env,
        "resources": {
            "requests": {"cpu": "250m", "memory": f"{spec.memory_request_mb}Mi"},
            "limits": {"cpu": "1", "memory": f"{spec.memory_limit_mb}Mi"},
        },
        "startupProbe": _exec_probe(health, 2, 30),
        # A Redis outage is not this pod's fault: neither unready pods (the PDB would then block node drains)
        # nor restarting every worker would fix it. The probes check this pod's heartbeat only.
        "readinessProbe": _exec_probe([*health, "--ignore-redis-down"], 10, 3),
        "livenessProbe": _exec_probe([*health, "--ignore-redis-down"], 20, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    # Where a ScaledObject owns the count, `replicas` is left out: each `kubectl apply` would snap it back.
    replicas = {} if spec.autoscale else {"replicas": spec.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**_meta(f"{NAME}-{component}", component), "annotations": {"taskrail/queue": spec.queue}},
        "spec": {
            **replicas,
            "selector": {"matchLabels": _labels(component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": _labels(component)},
                "spec": {
                    "terminationGracePeriodSeconds": PRESTOP_S + spec.grace_s,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _pdb(spec: Workload) -> dict[str, Any]:
    component = f"worker-{spec.slug}"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(f"{NAME}-{component}", component),
        # maxUnavailable rather than minAvailable: a one-replica queue must not block node drains.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(component)}},
    }


def _scaled_object(spec: Workload) -> dict[str, Any]:
    scale = spec.autoscale
    assert scale is not None
    component = f"worker-{spec.slug}"
    backlog = scale.backlog_per_worker or DEFAULT_BACKLOG_PER_WORKER
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(f"{NAME}-{component}", component),
        "spec": {
            "scaleTargetRef": {"name": f"{NAME}-{component}"},
            "minReplicaCount": scale.min,
            "maxReplicaCount": scale.max,
            "cooldownPeriod": round(scale.cooldown_s),  # KEDA's: before scaling an idle queue to zero
            "pollingInterval": POLLING_INTERVAL_S,
            # The HPA's: how long the wish for fewer pods must last before any are removed.
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": round(scale.cooldown_s)}}
                }
            },
            "triggers": [
                {
                    "type": "redis",
                    "metadata": {"listName": keys.QUEUE.format(spec.queue), "listLength": str(backlog)},
                    "authenticationRef": {"name": NAME},
                }
            ],
        },
    }


def _trigger_auth() -> dict[str, Any]:
    refs = [("address", "redis-address"), ("password", "redis-password")]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _meta(NAME, "autoscaler"),
        "spec": {
            "secretTargetRef": [{"parameter": p, "name": KEDA_SECRET, "key": k} for p, k in refs],
        },
    }


def _dashboard_deployment(profile: Profile, image: str) -> dict[str, Any]:
    env = [*_base_env(), _secret_env("TASKRAIL_DASHBOARD_PASSWORD", optional=False)]
    env.append({"name": "TASKRAIL_PROFILE", "value": profile.name})
    volumes, mounts = _scratch_volumes()
    port_probe = {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
    container = {
        "name": "dashboard",
        "image": image,
        # In the cluster it is reached by its Service's name (more names, for an Ingress: the ConfigMap's
        # TASKRAIL_DASHBOARD_ALLOWED_HOSTS); kubectl port-forward by localhost, probes and scrapers by address.
        "args": [*DASHBOARD_ARGS, "--allowed-host", f"{NAME}-dashboard"],
        "ports": [{"name": "http", "containerPort": DASHBOARD_PORT}],
        "envFrom": _env_from(),
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "readinessProbe": port_probe,
        "livenessProbe": {**port_probe, "periodSeconds": 20},
        # Keep serving while the Service stops routing here, then stop.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(f"{NAME}-dashboard", "dashboard"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _labels("dashboard")},
            "template": {
                "metadata": {"labels": _labels("dashboard")},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _dashboard_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"{NAME}-dashboard", "dashboard"),
        "spec": {
            "selector": _labels("dashboard"),
            "ports": [{"name": "http", "port": DASHBOARD_PORT, "targetPort": "http"}],
        },
    }
