"""``taskrail supervise``, ``scale``, ``status`` and ``profile check|show``: the supervisor and its profiles."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from config.connection import connect
from config.errors import ConfigError, SupervisorError
from config.scaling import Profile, QueuePlan, load_profile, load_scaling
from config.settings import load_settings
from tasks.core import keys
from workers.exitcodes import RET_ERROR, RET_GAVE_UP, RET_OK
from workers.supervisor import coordination
from workers.supervisor.status import QueueStatus, queue_status
from workers.supervisor.supervisor import Supervisor

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sup = subparsers.add_parser("supervise", help="run a profile's worker processes and keep them alive")
    sup.add_argument("--profile", help="profile name (default: TASKRAIL_PROFILE, else dev)")
    sup.add_argument("--file", type=Path, help="scaling file (default: TASKRAIL_SCALING_FILE)")
    sup.add_argument("--node", help="this supervisor's name in worker names and Redis (default: the hostname)")
    sup.set_defaults(func=run_supervise)

    scale = subparsers.add_parser("scale", help="pin queues' worker counts on running supervisors")
    scale.add_argument("counts", nargs="*", metavar="QUEUE=N", help="e.g. email=4 reports=1")
    scale.add_argument("--reset", nargs="*", metavar="QUEUE", help="unpin these queues (all when none given)")
    scale.add_argument("--node", help="only the supervisor with this node name (default: every supervisor)")
    scale.add_argument("--wait", type=float, default=10.0, help="seconds to wait for supervisors to apply it")
    scale.add_argument("--file", type=Path, help="scaling file naming the queues")
    scale.set_defaults(func=run_scale)

    status = subparsers.add_parser("status", help="queues, workers and supervisors at a glance")
    status.add_argument("--watch", type=float, nargs="?", const=2.0, metavar="SECONDS", help="refresh every 2 s")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.add_argument("--file", type=Path, help="scaling file giving the queue order")
    status.set_defaults(func=run_status)

    profile = subparsers.add_parser("profile", help="validate or show scaling profiles")
    actions = profile.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a scaling file; starts nothing")
    check.add_argument("file", nargs="?", type=Path, help="default: TASKRAIL_SCALING_FILE or config/scaling.yaml")
    check.set_defaults(func=run_profile_check)
    show = actions.add_parser("show", help="print a profile's plan: queues, processes, totals")
    show.add_argument("name", nargs="?", help="default: TASKRAIL_PROFILE, else dev")
    show.add_argument("--file", type=Path, help="scaling file")
    show.set_defaults(func=run_profile_show)


# ---- supervise ------------------------------------------------------------------------------


def run_supervise(args: argparse.Namespace) -> int:
    settings = load_settings()
    profile = load_profile(args.file or settings.scaling_file, args.profile or settings.profile)
    supervisor = Supervisor(settings, profile, connect(settings), node=args.node)
    try:
        code = supervisor.run()
    except SupervisorError as exc:
        print(f"taskrail supervise: {exc}", file=sys.stderr)
        return RET_ERROR
    if code == RET_GAVE_UP:
        print(f"taskrail supervise: gave up: {supervisor.failure}", file=sys.stderr)
    return code


# ---- scale ----------------------------------------------------------------------------------


def run_scale(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not args.counts and args.reset is None:
        raise ConfigError("taskrail scale: give QUEUE=N pairs (e.g. email=4) or --reset [QUEUE ...]")
    queues = load_scaling(args.file or settings.scaling_file).queues
    counts = _parse_counts(args.counts, queues)
    for queue in args.reset or []:
        _known(queue, queues)
    conn = connect(settings)
    if args.reset is not None:
        version = coordination.reset_scale(conn, args.reset, args.node)
        print(f"unpinned {', '.join(args.reset) or 'every queue'}"
              + (f" on {args.node}" if args.node else " on every supervisor, node pins included"))  # fmt: skip
    if counts:
        version = coordination.request_scale(conn, counts, args.node)
        pairs = ", ".join(f"{q}={n}" for q, n in counts.items())
        print(f"pinned {pairs}" + (f" on {args.node}" if args.node else " on every supervisor")
              + " (autoscale pauses for pinned queues; taskrail scale --reset QUEUE unpins)")  # fmt: skip
    return _wait_applied(conn, version, args.node, args.wait)


def _parse_counts(pairs: Sequence[str], queues: tuple[str, ...]) -> dict[str, int]:
    counts = {}
    for pair in pairs:
        queue, sep, number = pair.partition("=")
        if not sep or not number.strip().isdigit():
            raise ConfigError(f"taskrail scale: {pair!r} is not QUEUE=N with N a whole number 0 or more, e.g. email=4")
        counts[_known(queue.strip(), queues)] = int(number)
    return counts


def _known(queue: str, queues: tuple[str, ...]) -> str:
    if queue not in queues:
        raise ConfigError(f"taskrail scale: unknown queue {queue!r}; the scaling file names: {', '.join(queues)}")
    return queue


def _wait_applied(conn: redis.Redis, version: int, node: str | None, wait_s: float) -> int:
    deadline = time.monotonic() + wait_s
    while True:
        sups = [s for s in coordination.read_supervisors(conn) if node is None or s["node"] == node]
        if not sups:
            print("no supervisor is running" + (f" as {node}" if node else "") + "; the counts apply when one starts")
            return RET_OK
        late = [s["node"] for s in sups if s["scale_version"] < version]
        if not late:
            for s in sups:
                counts = ", ".join(f"{q}={v['target']}" for q, v in s["queues"].items())
                print(f"{s['node']}: applied ({counts})")
            return RET_OK
        if time.monotonic() > deadline:
            print(f"not applied within {wait_s:g}s by: {', '.join(late)}", file=sys.stderr)
            return RET_ERROR
        time.sleep(0.1)


# ---- status ---------------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        queues = list(load_scaling(args.file or settings.scaling_file).queues)
    except ConfigError as exc:
        print(f"taskrail status: {exc}; showing queues in name order", file=sys.stderr)
        queues = []
    conn = connect(settings)
    while True:
        known = sorted({keys.queue_name(q.decode()) for q in conn.smembers(keys.QUEUES)})
        order = queues + [q for q in known if q not in queues]
        rows, sups = queue_status(conn, order), coordination.read_supervisors(conn)
        if args.json:
            text = json.dumps({"queues": [r.as_dict() for r in rows], "supervisors": sups}, indent=2)
        else:
            text = _status_text(rows, sups)
        if args.watch is None:
            print(text)
            return RET_OK
        print("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S ") + text, flush=True)
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return RET_OK


def _status_text(rows: list[QueueStatus], sups: list[dict[str, Any]]) -> str:
    table = _table(
        ["QUEUE", "WAITING", "SCHEDULED", "RUNNING", "FAILED", "WORKERS", "DONE/1M", "OLDEST"],
        [[r.name, r.waiting, r.scheduled, r.running, r.failed, f"{r.workers_busy}/{r.workers_total}",
          r.completed_1m, "-" if r.oldest_wait_s is None else _age(r.oldest_wait_s)] for r in rows],
    )  # fmt: skip
    lines = [table, "", f"supervisors: {len(sups) or 'none running'}"]
    for s in sups:
        lines.append(f"  {s['node']} (pid {s['pid']}, profile {s['profile']}, up {_age(time.time() - s['started_at'])}"
                     + (", draining" if s["draining"] else "") + ")")  # fmt: skip
        for queue, q in s["queues"].items():
            if q["target"] or q["running"]:
                notes = (" pinned" if q["pinned"] else "") + (f" autoscale {q['autoscale'][0]}..{q['autoscale'][1]}"
                                                               if q["autoscale"] else "")  # fmt: skip
                lines.append(f"    {queue}: {q['running']}/{q['target']} processes{notes}")
            lines += [f"      {w['name']} pid {w['pid']} up {_age(w['uptime_s'])} {w['state']}"
                      for w in s["workers"] if w["queue"] == queue]  # fmt: skip
    return "\n".join(lines)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    )


# ---- profile check | show -------------------------------------------------------------------


def run_profile_check(args: argparse.Namespace) -> int:
    path = args.file or load_settings().scaling_file
    scaling = load_scaling(path)
    summary = ", ".join(f"{p.name} ({p.total_workers} workers)" for p in scaling.profiles.values())
    print(f"{path}: OK: {len(scaling.queues)} queues; profiles: {summary}")
    for profile in scaling.profiles.values():
        for queue in profile.unserved():
            print(f"note: profile {profile.name!r}: no worker listens to queue {queue!r}; its jobs would wait")
    return RET_OK


def run_profile_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    profile = load_profile(args.file or settings.scaling_file, args.name or settings.profile)
    print(_plan_text(profile))
    return RET_OK


def _plan_text(profile: Profile) -> str:
    def autoscale(p: QueuePlan) -> str:
        a = p.autoscale
        if a is None:
            return "-"
        triggers = [f"{a.backlog_per_worker}/worker" if a.backlog_per_worker else "",
                    f"wait>{a.max_wait_s:g}s" if a.max_wait_s is not None else ""]  # fmt: skip
        return f"{a.min}..{a.max} ({', '.join(t for t in triggers if t)}; cooldown {a.cooldown_s:g}s)"

    def recycle(p: QueuePlan) -> str:
        parts = [f"{p.max_jobs} jobs" if p.max_jobs else "", f"{p.max_memory_mb} MB" if p.max_memory_mb else ""]
        return " or ".join(x for x in parts if x) or "-"

    rows = [[p.name, p.workers, ",".join(p.listens), p.concurrency, p.isolation, p.weight, p.rate_limit or "-",
             autoscale(p), recycle(p), f"{p.shutdown_timeout_s:g}s", f"{p.max_restarts}/{p.max_seconds:g}s"]
            for p in profile.queues]  # fmt: skip
    headers = ["QUEUE", "WORKERS", "LISTENS", "CONC", "ISOLATION", "WEIGHT", "RATE", "AUTOSCALE", "RECYCLE AT",
               "SHUTDOWN", "RESTARTS"]  # fmt: skip
    most = sum(p.autoscale.max if p.autoscale else p.workers for p in profile.queues)
    slots = sum(p.workers * p.concurrency for p in profile.queues)
    lines = [f"profile {profile.name!r} (mode {profile.mode}) from {profile.source}", _table(headers, rows), "",
             f"total: {profile.total_workers} worker processes (up to {most} with autoscale), {slots} job slots"]  # fmt: skip
    lines += [f"note: no worker listens to queue {q!r}; its jobs would wait" for q in profile.unserved()]
    return "\n".join(lines)
