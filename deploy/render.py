"""The deploy dispatcher: ``taskrail deploy render --target compose|kubernetes`` renders a profile for a target.

The profile stays the one source of truth: each queue with workers becomes one worker service
(Compose) or Deployment (Kubernetes) whose replicas, environment and shutdown timing come from the
queue's plan. Every container runs one ``rq worker -w workers.Worker`` process named
``<hostname>.<queue>.0``, so ``taskrail health --this-host`` finds its heartbeat.

The dispatcher: the targets (deploy/render_compose.py, deploy/render_kubernetes.py) import only the
shared pieces (deploy/workload.py, deploy/output.py), never this module. The shutdown chain is
described in deploy/workload.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from config.errors import ConfigError
from config.scaling import Profile
from deploy.keda import Keda
from deploy.output import GENERATED
from deploy.render_compose import compose_files
from deploy.render_kubernetes import kubernetes_files
from deploy.workload import workloads

__all__ = ["DEFAULT_IMAGE", "TARGETS", "render", "write_rendered"]

TARGETS = ("compose", "kubernetes")
DEFAULT_IMAGE = f"taskrail:{metadata.version('taskrail')}"  # a versioned tag, never `latest`: what a rollback names


def render(profile: Profile, target: str, *, image: str = DEFAULT_IMAGE, keda: Keda | None = None
           ) -> dict[str, str]:  # fmt: skip
    """Render ``profile`` for ``target``: file name -> YAML text, in a stable order.

    ``keda`` (deploy/keda.py): what the ScaledObjects scale on and how KEDA reaches Redis; Compose
    needs none of it.

    Raises:
        ConfigError: an unknown target, or a profile that cannot be deployed as it is.
    """
    if target == "compose":
        return compose_files(profile, workloads(profile), image)
    if target == "kubernetes":
        keda = keda or Keda()
        keda.check(profile)
        return kubernetes_files(profile, workloads(profile), image, keda)
    raise ConfigError(f"unknown deploy target {target!r}; choose one of: {', '.join(TARGETS)}")


def write_rendered(files: Mapping[str, str], out: Path) -> list[Path]:
    """Write ``files`` into ``out``; remove files an earlier render wrote that this one no longer does."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        written.append(path)
    for stale in sorted(out.glob("*.yaml")):
        if stale.name not in files and stale.read_text().startswith(GENERATED):
            stale.unlink()
    return written
