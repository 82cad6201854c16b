"""The Kubernetes target's services: the dashboard, and ``taskrail metrics`` for Prometheus to scrape.

Each is a one-replica Deployment with a Service. The metrics endpoint serves every worker's numbers
(they are read from Redis at scrape time), so one pod covers the cluster; its Service carries the
``prometheus.io/*`` annotations, and ``servicemonitor.yaml`` (outside the kustomization, as it needs
the Prometheus Operator's CRD) points a ServiceMonitor at it.
"""

from __future__ import annotations

from typing import Any

from config.scaling import Profile
from deploy.kube_parts import (
    NAME,
    base_env,
    env_from,
    labels,
    meta,
    pod_security,
    scratch_volumes,
    secret_env,
    security,
)
from deploy.workload import PRESTOP_S
from workers.supervisor.children import scheduling_environ

__all__ = ["METRICS_PORT", "dashboard_documents", "metrics_documents", "service_monitor"]

DASHBOARD_PORT = 9181
DASHBOARD_ARGS = ("taskrail", "dashboard", "--host", "0.0.0.0", "--port", str(DASHBOARD_PORT))
METRICS_PORT = 9808
METRICS_ARGS = ("taskrail", "metrics", "--host", "0.0.0.0", "--port", str(METRICS_PORT))
SCRAPE_INTERVAL = "30s"


def dashboard_documents(profile: Profile, image: str) -> list[dict[str, Any]]:
    env = [*base_env(), secret_env("TASKRAIL_DASHBOARD_PASSWORD", optional=False)]
    env.append({"name": "TASKRAIL_PROFILE", "value": profile.name})
    # In the cluster it is reached by its Service's name (more names, for an Ingress: the ConfigMap's
    # TASKRAIL_DASHBOARD_ALLOWED_HOSTS); kubectl port-forward by localhost, probes and scrapers by address.
    args = [*DASHBOARD_ARGS, "--allowed-host", f"{NAME}-dashboard"]
    resources = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    deployment = _deployment("dashboard", image, args, DASHBOARD_PORT, env, resources)
    return [deployment, _service("dashboard", DASHBOARD_PORT, "http", {})]


def metrics_documents(profile: Profile, image: str) -> list[dict[str, Any]]:
    resources = {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"cpu": "500m", "memory": "192Mi"}}
    # The queues' rate limits: /scale/<queue> stops a queue growing while its limit is used up.
    env = [*base_env(), *({"name": k, "value": v} for k, v in scheduling_environ(profile).items())]
    deployment = _deployment("metrics", image, list(METRICS_ARGS), METRICS_PORT, env, resources)
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT), "prometheus.io/path": "/metrics"}
    return [deployment, _service("metrics", METRICS_PORT, "metrics", scrape)]


def service_monitor() -> dict[str, Any]:
    """The Prometheus Operator's scrape target for the metrics Service."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(f"{NAME}-metrics", "metrics"),
        "spec": {
            "selector": {"matchLabels": labels("metrics")},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": SCRAPE_INTERVAL}],
        },
    }


def _deployment(component: str, image: str, args: list[str], port: int, env: list[dict[str, Any]],
                resources: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    volumes, mounts = scratch_volumes()
    port_name = "http" if component == "dashboard" else "metrics"
    port_probe = {"tcpSocket": {"port": port_name}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
    container = {
        "name": component,
        "image": image,
        "args": args,  # `args`: the image's ENTRYPOINT (tini) stays PID 1
        "ports": [{"name": port_name, "containerPort": port}],
        "envFrom": env_from(),
        "env": env,
        "resources": resources,
        "readinessProbe": port_probe,
        "livenessProbe": {**port_probe, "periodSeconds": 20},
        # Keep serving while the Service stops routing here, then stop.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": security(),
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(f"{NAME}-{component}", component),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels(component)},
            "template": {
                "metadata": {"labels": labels(component)},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _service(component: str, port: int, port_name: str, annotations: dict[str, str]) -> dict[str, Any]:
    metadata = meta(f"{NAME}-{component}", component)
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"selector": labels(component), "ports": [{"name": port_name, "port": port, "targetPort": port_name}]},
    }
