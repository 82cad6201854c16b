"""``taskrail bench [--quick] [--peers] [--cost] [--out DIR] [--write-docs | --docs-only]``: taskrail against RQ and peers."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path

from config.errors import ConfigError
from config.settings import load_settings
from scripts.args import positive_int
from scripts.bench import (
    SYSTEMS,
    BenchOptions,
    format_table,
    rank_block,
    rtt,
    run_bench,
    write_chart,
    write_json,
    write_markdown,
)
from scripts.bench.publish import COMMITTED, publish
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure taskrail against plain RQ (and Celery, Dramatiq, BullMQ, Huey): enqueue, drains, latency, memory",
        description="Starts a private server (or uses REDIS_URL, whose database must be empty), runs each "
        "workload on RQ's default worker, RQ's SimpleWorker and taskrail (2 worker processes each; with --peers "
        "each peer at its default and its best configuration), prints a table and writes results.json, "
        "results.md and benchmarks.png.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and one repetition (under a minute)")
    parser.add_argument(
        "--peers", action="store_true", help="also run Celery, Dramatiq, BullMQ, Huey (make bench-peers)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="output directory")
    parser.add_argument("--drain-s", type=positive_float, help="seconds each drain lasts, about (5; quick 1.5)")
    parser.add_argument(
        "--enqueue-jobs",
        type=positive_int,
        help="jobs enqueued one by one after 100 untimed, 4x in bulk (5000; quick 1000); with --cost, no-op jobs per drain (20000; "
        "quick 2000)",
    )
    parser.add_argument("--latency-jobs", type=positive_int, help="jobs in each latency run (200; quick 60)")
    parser.add_argument("--memory-jobs", type=positive_int, help="jobs in the memory run (100000; quick 5000)")
    parser.add_argument("--repeat", type=positive_int, help="repetitions; figures are medians (3; quick 1)")
    parser.add_argument("--rate", type=positive_float, help="jobs/s for the latency run (20)")
    parser.add_argument(
        "--systems", help=f"comma-separated subset of {','.join(s.key for s in SYSTEMS)} (default: all run)"
    )
    parser.add_argument("--scale", action="store_true", help="cost per operation at 10k/100k/1M waiting jobs (minutes)")
    parser.add_argument("--long-run", type=positive_int, metavar="N",
                        help="N jobs of a mixed workload through 2 workers: memory drift, keys left behind")  # fmt: skip
    parser.add_argument("--cost", action="store_true",
                        help="the cost of one job: worker and server CPU µs, scripts, round trips, per mode")  # fmt: skip
    parser.add_argument(
        "--rtt", metavar="MS", help="as root: hosts in network namespaces at these round trips, e.g. 0.5,2 (and 0)"
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--write-docs", action="store_true",
                      help=f"after the run, commit its results to {COMMITTED.name} and regenerate the docs' figures")  # fmt: skip
    docs.add_argument("--docs-only", action="store_true",
                      help=f"measure nothing: regenerate the docs' figures from the committed {COMMITTED.name}")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.docs_only:
        print("wrote " + ", ".join(str(p) for p in publish()))
        return RET_OK
    settings = load_settings()
    if args.scale:
        return _scale(args, settings.redis_url)
    if args.long_run:
        return _long_run(args, settings.redis_url)
    if args.cost:
        return _cost(args, settings.redis_url)
    given = {
        "drain_s": args.drain_s,
        "enqueue_jobs": args.enqueue_jobs,
        "latency_jobs": args.latency_jobs,
        "memory_jobs": args.memory_jobs,
        "repeat": args.repeat,
        "rate": args.rate,
        "systems": _systems(args.systems),
        "peers": args.peers or None,
        "out_dir": args.out,
        "redis_url": settings.redis_url,
        "command": "taskrail " + shlex.join(sys.argv[1:]),
    }
    options = BenchOptions.build(quick=args.quick, **given)
    # A stop request unwinds like Ctrl-C, so the bench's workers and server are stopped too.
    signal.signal(signal.SIGTERM, _stop)
    if args.rtt is not None:
        return rtt.run(options, args.rtt)
    results = run_bench(options)
    json_path = write_json(results, options.out_dir / "results.json")
    chart_path = write_chart(results, options.out_dir / "benchmarks.png")
    write_markdown(results, options.out_dir / "results.md")
    print()
    print(format_table(results))
    print()
    print(rank_block(results))
    for note in results.notes:
        print(f"note: {note}")
    print(f"\nwrote {json_path}, results.md and {chart_path} ({results.meta['duration_s']}s)")
    if args.write_docs:
        print("wrote " + ", ".join(str(p) for p in publish(json_path)))
    return RET_OK


def _scale(args: argparse.Namespace, redis_url: str | None) -> int:
    from scripts.bench.scale import format_scale, scale_command

    signal.signal(signal.SIGTERM, _stop)
    results, chart = scale_command(args.out, args.quick, redis_url, "taskrail " + shlex.join(sys.argv[1:]))
    print(format_scale(results))
    print(f"\nwrote {args.out / 'results-scale.md'}, results-scale.json and {chart}")
    return RET_OK


def _long_run(args: argparse.Namespace, redis_url: str | None) -> int:
    from scripts.bench.longrun import format_longrun, long_run

    signal.signal(signal.SIGTERM, _stop)
    results = long_run(args.out, args.long_run, redis_url, "taskrail " + shlex.join(sys.argv[1:]))
    print(format_longrun(results))
    print(f"\nwrote {args.out / 'results-longrun.md'}, results-longrun.json and {args.out / 'longrun.png'}")
    return RET_ERROR if results.left_behind else RET_OK


def _cost(args: argparse.Namespace, redis_url: str | None) -> int:
    from scripts.bench.cost import format_cost, measure_cost

    signal.signal(signal.SIGTERM, _stop)
    jobs = args.enqueue_jobs or (2000 if args.quick else 20000)
    costs, producer = measure_cost(args.out, jobs, args.repeat or (1 if args.quick else 3), redis_url)
    print(format_cost(costs, producer, os.cpu_count() or 1))
    return RET_OK


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (seconds, jobs/s), or a usage error that says so."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _systems(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    known = {s.key for s in SYSTEMS}
    chosen = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise ConfigError(f"--systems: unknown {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return chosen
