"""``taskrail deploy render`` (Compose or Kubernetes files from a scaling profile) and ``taskrail health``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.scaling import load_profile
from config.settings import load_settings
from deploy.keda import TRIGGERS, Keda
from deploy.render import DEFAULT_IMAGE, TARGETS, render, write_rendered
from deploy.render_kubernetes import MONITORS
from workers.exitcodes import RET_NO_HEARTBEAT, RET_OK, RET_REDIS_DOWN
from workers.health import Status, check_health, host_prefix

__all__ = ["register"]

EXIT_CODES = {Status.HEALTHY: RET_OK, Status.REDIS_DOWN: RET_REDIS_DOWN, Status.NO_HEARTBEAT: RET_NO_HEARTBEAT}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = subparsers.add_parser("deploy", help="deployment files from a scaling profile")
    actions = deploy.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    rendering = actions.add_parser("render", help="render Compose or Kubernetes files for a profile")
    rendering.add_argument("--profile", help="profile in the scaling file (default: TASKRAIL_PROFILE)")
    rendering.add_argument("--target", required=True, choices=TARGETS)
    rendering.add_argument("--out", type=Path, help="write the files into this directory (default: print them)")
    rendering.add_argument("--file", type=Path, help="scaling file (default: TASKRAIL_SCALING_FILE)")
    rendering.add_argument("--image", default=DEFAULT_IMAGE, help=f"container image (default: {DEFAULT_IMAGE})")
    rendering.add_argument("--keda-trigger", default="taskrail", choices=TRIGGERS,
                           help="Kubernetes: scale on taskrail metrics' /scale/<queue> (waiting + claimed, paused, "
                           "rate; default) or on the Redis list alone (redis)")  # fmt: skip
    rendering.add_argument("--namespace", default="default", help="Kubernetes: the namespace the manifests go into "
                           "(KEDA calls the metrics Service by it; default: default)")  # fmt: skip
    rendering.add_argument("--redis-url", help="with --keda-trigger redis: the workers' REDIS_URL without its "
                           "password, so KEDA uses the same TLS (rediss://), ACL user and database")  # fmt: skip
    rendering.add_argument("--scaled-job", action="append", default=[], metavar="QUEUE",
                           help="Kubernetes: run this autoscaled queue as a KEDA ScaledJob, one Job per job (for "
                           "jobs longer than any grace period); repeatable")  # fmt: skip
    rendering.set_defaults(func=run_render)

    pins = actions.add_parser("constraints", help="pin taskrail's runtime dependencies as installed here")
    pins.add_argument("--out", type=Path, help="write this file (default: print)")
    pins.set_defaults(func=run_constraints)

    health = subparsers.add_parser(
        "health",
        help="exit 0 if Redis answers (and the worker's heartbeat is fresh); for container probes",
        description="Exit codes: 0 healthy, 3 Redis does not answer, 4 no fresh heartbeat, 2 bad settings.",
    )
    who = health.add_mutually_exclusive_group()
    who.add_argument("--worker", help="a worker name, or a prefix of names")
    who.add_argument("--this-host", action="store_true", help="any worker of this host (<hostname>.*)")
    health.add_argument(
        "--ignore-redis-down",
        action="store_true",
        help="exit 0 when Redis does not answer (for liveness probes: restarting workers cannot fix Redis)",
    )
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for Redis (default 3)")
    health.set_defaults(func=run_health)


def run_constraints(args: argparse.Namespace) -> int:
    from deploy.constraints import constraints_text, runtime_pins  # needs `packaging`: a dev tool, not the image's

    text = constraints_text(runtime_pins())
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return RET_OK


def run_render(args: argparse.Namespace) -> int:
    settings = load_settings()
    profile = load_profile(args.file or settings.scaling_file, args.profile or settings.profile)
    keda = Keda.of(args.keda_trigger, args.namespace, args.redis_url, tuple(args.scaled_job))
    files = render(profile, args.target, image=args.image, keda=keda)
    if args.out is None:
        # What `kubectl apply -f -` takes anywhere: no kustomization, no ServiceMonitor (an operator's CRD).
        sys.stdout.write(
            "---\n".join(text for name, text in files.items() if name not in ("kustomization.yaml", MONITORS))
        )
        return RET_OK
    for path in write_rendered(files, args.out):
        print(f"wrote {path}")
    return RET_OK


def run_health(args: argparse.Namespace) -> int:
    worker = host_prefix() if args.this_host else args.worker
    result = check_health(load_settings(), worker, timeout_s=args.timeout)
    if result.status is Status.REDIS_DOWN and args.ignore_redis_down:
        print(f"ok (Redis down, ignored): {result.message}")
        return RET_OK
    if result.ok:
        print(f"ok: {result.message}")
        return RET_OK
    print(f"unhealthy: {result.message}", file=sys.stderr)
    return EXIT_CODES[result.status]
