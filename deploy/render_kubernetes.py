"""The Kubernetes target: per queue a Deployment, a PodDisruptionBudget and (with autoscale) a KEDA
``ScaledObject``; the dashboard and metrics services (deploy/render_services.py); a ``kustomization.yaml``
tying them together.

Kubernetes is the supervisor here: each pod runs one worker process, restarts come from the
Deployment and scaling from ``replicas`` or KEDA. Secrets are referenced by name, never inlined.
"""

from __future__ import annotations

from typing import Any

from config.scaling import Profile
from deploy.keda import KEDA_SECRET, Keda
from deploy.kube_parts import (
    CONFIG_MAP,
    DATA_DIR,
    NAME,
    SECRET,
    WORKER_ACCOUNT,
    base_env,
    env_from,
    labels,
    meta,
    pod_security,
    scratch_volumes,
    security,
    worker_rbac,
)
from deploy.output import header, to_yaml
from deploy.render_services import dashboard_documents, metrics_documents, service_monitor
from deploy.workload import PRESTOP_S, Workload
from tasks.core import keys
from workers.alive import probe_command

__all__ = ["CONFIG_MAP", "DEFAULT_BACKLOG_PER_WORKER", "KEDA_SECRET", "MONITORS", "SECRET", "kubernetes_files"]

MONITORS = "servicemonitor.yaml"  # rendered beside, not in the kustomization: it needs the Prometheus Operator

DEFAULT_BACKLOG_PER_WORKER = 100  # KEDA needs a list length; used when a queue scales on wait time only
POLLING_INTERVAL_S = 15
ALIVE_FRESH_S = 20  # the probes' limit on the age of the worker's alive file


def kubernetes_files(profile: Profile, specs: tuple[Workload, ...], image: str, keda: Keda | None = None
                     ) -> dict[str, str]:  # fmt: skip
    """One file per queue plus the dashboard, KEDA's authentication and the kustomization."""
    keda = keda or Keda()
    files: dict[str, str] = {}
    top = header(profile, "kubernetes", ("Apply: kubectl apply -k <this directory> (Secrets first: docs/deploy.md).",))
    files["dashboard.yaml"] = top + to_yaml(*dashboard_documents(profile, image))
    files["metrics.yaml"] = top + to_yaml(*metrics_documents(profile, image))
    files["rbac.yaml"] = top + to_yaml(*worker_rbac())
    scaled = [spec for spec in specs if spec.autoscale]
    if scaled and keda.kind == "redis":
        files["keda-auth.yaml"] = top + to_yaml(_trigger_auth(keda))
    for spec in specs:
        if spec.queue in keda.scaled_jobs:
            documents = [_scaled_job(spec, image, keda)]
        else:
            documents = [_deployment(spec, image), _pdb(spec)]
        if spec.autoscale and spec.queue not in keda.scaled_jobs:
            documents.append(_scaled_object(spec, keda))
        files[f"worker-{spec.slug}.yaml"] = top + to_yaml(*documents)
    files["kustomization.yaml"] = top + to_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "labels": [{"pairs": {"app.kubernetes.io/part-of": NAME}}],
            "resources": sorted(files),
        }
    )
    monitors = header(
        profile, "kubernetes", ("Apply where the Prometheus Operator runs: kubectl apply -f " + MONITORS,)
    )
    files[MONITORS] = monitors + to_yaml(service_monitor())
    return files


def _exec_probe(command: list[str], period_s: int, failures: int, timeout_s: int = 5) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
    }


def _pod_spec(spec: Workload, image: str, args: list[str]) -> dict[str, Any]:
    # The pod's name and namespace: its worker names itself after the pod and sets the pod's deletion cost.
    env = [_field_env("POD_NAME", "metadata.name"), _field_env("POD_NAMESPACE", "metadata.namespace"), *base_env()]
    env += [{"name": key, "value": value} for key, value in spec.environment.items()]
    volumes, mounts = scratch_volumes()
    alive = probe_command(DATA_DIR, ALIVE_FRESH_S, "POD_NAME")
    container = {
        "name": "worker",
        "image": image,
        # The pod's hostname is its name, so the worker is `<pod>.<queue>.0` and the probes find it.
        # `args`, not `command`: the image's ENTRYPOINT (tini) stays PID 1 and reaps orphans.
        "args": args,
        "envFrom": env_from(),
        "env": env,
        "resources": {
            "requests": {"cpu": "250m", "memory": f"{spec.memory_request_mb}Mi"},
            "limits": {"cpu": "1", "memory": f"{spec.memory_limit_mb}Mi"},
        },
        # `sh` and `find` on the file the worker touches each heartbeat tick (workers/alive.py), not a Python
        # process per probe. Redis down fails none: neither unready pods (the PDB would then block node drains)
        # nor restarting every worker would fix it; a stuck worker fails them.
        "startupProbe": _exec_probe(alive, 2, 30),
        "readinessProbe": _exec_probe(alive, 10, 3),
        "livenessProbe": _exec_probe(alive, 20, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": security(),
        "volumeMounts": mounts,
    }
    return {
        "serviceAccountName": WORKER_ACCOUNT,
        "terminationGracePeriodSeconds": PRESTOP_S + spec.grace_s,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": volumes,
    }


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _deployment(spec: Workload, image: str) -> dict[str, Any]:
    component = f"worker-{spec.slug}"
    # Where a ScaledObject owns the count, `replicas` is left out: each `kubectl apply` would snap it back.
    replicas = {} if spec.autoscale else {"replicas": spec.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta(f"{NAME}-{component}", component), "annotations": {"taskrail/queue": spec.queue}},
        "spec": {
            **replicas,
            "selector": {"matchLabels": labels(component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels(component)},
                "spec": _pod_spec(spec, image, spec.command("$(POD_NAME)")),
            },
        },
    }


def _scaled_job(spec: Workload, image: str, keda: Keda) -> dict[str, Any]:
    """A Kubernetes Job per job, for a queue whose jobs outlive any grace period: nothing scales it down
    mid-job. Each pod runs one job and exits 0; KEDA starts as many as ``load`` asks, less those running."""
    scale = spec.autoscale
    assert scale is not None
    component = f"worker-{spec.slug}"
    pod = {**_pod_spec(spec, image, spec.command("$(POD_NAME)", once=True)), "restartPolicy": "Never"}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {**meta(f"{NAME}-{component}", component), "annotations": {"taskrail/queue": spec.queue}},
        "spec": {
            # backoffLimit 0: a pod lost mid-job is not retried by Kubernetes; the leader hands its job back.
            "jobTargetRef": {"backoffLimit": 0, "template": {"metadata": {"labels": labels(component)}, "spec": pod}},
            "pollingInterval": POLLING_INTERVAL_S,
            "minReplicaCount": scale.min,
            "maxReplicaCount": scale.max,
            "successfulJobsHistoryLimit": 5,
            "failedJobsHistoryLimit": 5,
            "triggers": [keda.trigger(spec.queue, keys.QUEUE.format(spec.queue), 1, NAME)],
        },
    }


def _pdb(spec: Workload) -> dict[str, Any]:
    component = f"worker-{spec.slug}"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(f"{NAME}-{component}", component),
        # maxUnavailable rather than minAvailable: a one-replica queue must not block node drains.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(component)}},
    }


def _scaled_object(spec: Workload, keda: Keda) -> dict[str, Any]:
    scale = spec.autoscale
    assert scale is not None
    component = f"worker-{spec.slug}"
    backlog = scale.backlog_per_worker or DEFAULT_BACKLOG_PER_WORKER
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta(f"{NAME}-{component}", component),
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
            "triggers": [keda.trigger(spec.queue, keys.QUEUE.format(spec.queue), backlog, NAME)],
            # When the trigger cannot be read (the metrics pod or Redis away): the profile's count, not zero.
            "fallback": {"failureThreshold": 3, "replicas": max(spec.replicas, scale.min, 1)},
        },
    }


def _trigger_auth(keda: Keda) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": meta(NAME, "autoscaler"),
        "spec": {"secretTargetRef": keda.redis.secret_refs()},
    }
