"""Busy pods last: a worker on Kubernetes keeps its pod's deletion cost at the number of jobs it runs.

When a Deployment shrinks (KEDA scaling down, ``kubectl scale``), Kubernetes removes the pods with
the lowest ``controller.kubernetes.io/pod-deletion-cost`` first. Each worker process sets its own
pod's annotation to how many jobs it is running, so idle pods go first and a long ``reports`` job
is not cut off at its grace period and requeued on every scale-down.

It runs where the rendered manifests put it: ``POD_NAME`` and ``POD_NAMESPACE`` from the downward
API, the in-cluster service account (``taskrail-worker``, allowed to patch pods: deploy/rbac)
and ``KUBERNETES_SERVICE_HOST``. Anywhere else it does nothing. A thread of its own samples the
running count each second and patches only on a change, at most once per :data:`MIN_GAP_S`
(Kubernetes asks that the annotation not be updated often), so the job loop and the heartbeat
never wait on the API server. A refused or failed patch is logged (the first, then every tenth)
and tried again later; it never stops the worker.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ANNOTATION", "PodCostReporter", "PodTarget", "patch_cost", "pod_target", "start_pod_cost_reporter"]

log = logging.getLogger(__name__)

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SAMPLE_S = 1.0
MIN_GAP_S = 5.0
RETRY_S = 30.0
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PodTarget:
    """Where this worker's pod lives and how to reach the API server from inside the cluster."""

    api_url: str
    namespace: str
    pod: str
    token_file: Path
    ca_file: Path

    @property
    def url(self) -> str:
        return f"{self.api_url}/api/v1/namespaces/{self.namespace}/pods/{self.pod}"


def pod_target(environ: Mapping[str, str] = os.environ) -> PodTarget | None:
    """The pod to annotate, or None outside Kubernetes (or without the rendered environment)."""
    folder = Path(environ.get("POD_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR))
    host, pod, namespace = (environ.get(k, "") for k in ("KUBERNETES_SERVICE_HOST", "POD_NAME", "POD_NAMESPACE"))
    if not (host and pod and namespace and (folder / "token").is_file()):
        return None
    host = f"[{host}]" if ":" in host else host
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    return PodTarget(f"https://{host}:{port}", namespace, pod, folder / "token", folder / "ca.crt")


def patch_cost(target: PodTarget, cost: int, timeout_s: float = TIMEOUT_S) -> None:
    """Set the pod's deletion cost (a JSON merge patch of one annotation).

    Raises:
        OSError: the API server cannot be reached or refuses (urllib's HTTPError is one).
    """
    body = json.dumps({"metadata": {"annotations": {ANNOTATION: str(cost)}}}).encode()
    token = target.token_file.read_text().strip()  # read each time: the kubelet rotates it
    request = urllib.request.Request(target.url, data=body, method="PATCH", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"})  # fmt: skip
    context = ssl.create_default_context(cafile=str(target.ca_file))
    with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
        response.read()


class PodCostReporter(threading.Thread):
    """Patches the pod's deletion cost whenever ``running()`` changes (see the module docstring)."""

    def __init__(self, target: PodTarget, running: Callable[[], int]) -> None:
        super().__init__(name="taskrail-pod-cost", daemon=True)
        self.target = target
        self.running = running
        self.reported: int | None = None
        self._failures = 0
        self._next_patch = 0.0
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=TIMEOUT_S + 1)

    def run(self) -> None:
        while not self._done.wait(SAMPLE_S):
            self.sample()

    def sample(self) -> None:
        """One step: patch if the running count changed and the last patch is old enough."""
        cost, now = self.running(), time.monotonic()
        if cost == self.reported or now < self._next_patch:
            return
        try:
            patch_cost(self.target, cost)
        except OSError as exc:
            self._failures += 1
            self._next_patch = now + RETRY_S
            if self._failures % 10 == 1:
                log.warning("cannot set %s on pod %s (%s): the worker's service account needs `patch` on pods "
                            "(deploy/kubernetes/rbac.yaml)", ANNOTATION, self.target.pod, _reason(exc))  # fmt: skip
            return
        self.reported, self._failures, self._next_patch = cost, 0, now + MIN_GAP_S


def _reason(exc: OSError) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    return str(exc)


def start_pod_cost_reporter(running: Callable[[], int]) -> PodCostReporter | None:
    """Start the reporter when running in a rendered Kubernetes pod; None (nothing started) elsewhere."""
    target = pod_target()
    if target is None:
        return None
    reporter = PodCostReporter(target, running)
    reporter.start()
    return reporter
