"""``taskrail bench --rtt MS[,MS...]``: the enqueue, drain and latency workloads with the server, each worker and
the producer on hosts of their own (network namespaces joined by scripts/multihost/wire.py), at each round trip.

Needs root. 0 (the namespaces with no added delay) is always measured first, as the baseline. The round trip asked
for is set per host and corrected against a measured Redis PING; the measured one is what the table shows.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from config.embedded import find_server_binary
from config.errors import BenchError, ConfigError
from scripts.bench import workloads
from scripts.bench.harness import ROOT, Harness
from scripts.bench.systems import WORKERS, BenchOptions, System, find_systems
from scripts.multihost.netns import Network, unavailable

__all__ = ["RttResults", "format_rtt_table", "parse_rtts", "run", "run_rtt_bench", "write_rtt_chart"]

PORT = 6379
METRICS = (("enqueue_one", "enqueue one by one (jobs/s)"), ("enqueue_bulk", "enqueue in bulk (jobs/s)"),
           ("drain_noop", "no-op drain (jobs/s)"), ("latency_p50", "latency p50 (ms)"),
           ("latency_p99", "latency p99 (ms)"))  # fmt: skip
RttResults = dict[str, Any]  # {"meta": ..., "rtts": [{"asked_ms", "measured_ms", "figures": {metric: {system: v}}}]}


def parse_rtts(text: str) -> tuple[float, ...]:
    """``"0.5,2"`` -> (0.0, 0.5, 2.0): the baseline 0 first, then each round trip asked for, in milliseconds."""
    try:
        values = sorted({float(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ConfigError(f"--rtt takes milliseconds separated by commas, e.g. --rtt 0.5,2; got {text!r}") from None
    if not values or any(not 0 <= v <= 100 for v in values):
        raise ConfigError(f"--rtt: each round trip must be from 0 to 100 ms, e.g. --rtt 0.5,2; got {text!r}")
    return tuple(sorted({0.0, *values}))


class HostsHarness(Harness):
    """The bench harness with each worker process on its own host; ``conn`` is the producer host's client."""

    def __init__(self, net: Network, url: str, work_dir: Path, log_dir: Path) -> None:
        super().__init__(url, work_dir, log_dir)
        self.net = net
        self.conn = net.client("producer", PORT, host=net.hosts["server"].address)
        self.observer = net.client("server", PORT)  # counts are read beside the server, not across the network

    def start(
        self, commands: list[list[str]], run: str, env: dict[str, str], ready: Callable[[], object], what: str,
        cwd: Path = ROOT,
    ) -> list[int]:  # fmt: skip
        placed = [["ip", "netns", "exec", self.net.hosts[f"worker-{i + 1}"].ns, *c] for i, c in enumerate(commands)]
        return super().start(placed, run, env, ready, what, cwd)

    def counts(self) -> tuple[int, int]:
        with self.observer.pipeline(transaction=False) as pipe:
            pipe.zcard(self.finished_key)
            pipe.zcard(self.failed_key)
            finished, failed = pipe.execute()
        return int(finished), int(failed)


@contextmanager
def open_hosts(out_dir: Path, rtt_ms: float) -> Iterator[tuple[HostsHarness, float]]:
    """Hosts ``server``, ``worker-1..WORKERS`` and ``producer``, each client host ``rtt_ms`` from the server."""
    work_dir = out_dir / f"rtt-{rtt_ms:g}"
    work_dir.mkdir(parents=True, exist_ok=True)
    net = Network(["server", *[f"worker-{i + 1}" for i in range(WORKERS)], "producer"], work_dir).open()
    try:
        args = [str(find_server_binary()), "--port", str(PORT), "--bind", "0.0.0.0", "--protected-mode", "no",
                "--dir", str(work_dir), "--save", "", "--appendonly", "no"]  # fmt: skip
        net.spawn("server", args, {}, work_dir / "server.log")
        server = net.hosts["server"].address
        _wait_server(net.client("server", PORT))
        measured = [net.tune_rtt(h, rtt_ms, server, PORT) for h in net.hosts if h != "server"]
        harness = HostsHarness(net, f"redis://{server}:{PORT}/0", work_dir, out_dir / "logs")
        try:
            yield harness, round(statistics.median(measured), 3)
        finally:
            harness.stop_workers()
    finally:
        net.close()


def _wait_server(client: redis.Redis) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise BenchError("the server in its namespace did not answer within 20 s") from None
            time.sleep(0.05)


def _measure(h: Harness, system: System, options: BenchOptions, rep: int) -> dict[str, float]:
    def quiet(done: int) -> None:
        pass

    producer = workloads.make_producer(system, h)
    drain_jobs = system.jobs("noop", options.drain_s)
    figures = {
        "enqueue_one": workloads.enqueue_one(h, producer, options.enqueue_jobs, quiet),
        "enqueue_bulk": workloads.enqueue_bulk(h, producer, 4 * options.enqueue_jobs, quiet),
        "drain_noop": workloads.drain(h, system, "noop", drain_jobs, f"rtt-{system.key}-{rep}", quiet),
    }
    cuts = workloads.latency(h, system, options.latency_jobs, options.rate, f"rtt-lat-{system.key}-{rep}", quiet)
    return {**figures, **{f"latency_{k}": v for k, v in cuts.items()}}


def run_rtt_bench(options: BenchOptions, rtts: tuple[float, ...], say: Callable[[str], None] = print) -> RttResults:
    """Every selected system at every round trip; figures are medians of ``options.repeat`` runs."""
    reason = unavailable()
    if reason:
        raise ConfigError(f"taskrail bench --rtt: {reason}")
    (options.out_dir / "logs").mkdir(parents=True, exist_ok=True)
    systems = find_systems(options.systems)
    started = time.monotonic()
    results: RttResults = {"meta": {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                    "command": options.command, "systems": {s.key: s.label for s in systems},
                                    "drain_s": options.drain_s, "enqueue_jobs": options.enqueue_jobs,
                                    "latency_jobs": options.latency_jobs, "rate": options.rate,
                                    "repeat": options.repeat}, "rtts": []}  # fmt: skip
    for rtt in rtts:
        with open_hosts(options.out_dir, rtt) as (harness, measured):
            say(f"round trip {rtt:g} ms asked, {measured:g} ms measured (Redis PING from a client host)")
            runs: dict[str, dict[str, list[float]]] = {}
            for rep in range(1, options.repeat + 1):
                for system in systems:
                    for metric, value in _measure(harness, system, options, rep).items():
                        runs.setdefault(metric, {}).setdefault(system.key, []).append(value)
                    say(f"  {system.label} #{rep} done")
        figures = {m: {k: round(statistics.median(v), 2) for k, v in by.items()} for m, by in runs.items()}
        results["rtts"].append({"asked_ms": rtt, "measured_ms": measured, "figures": figures})
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    return results


def format_rtt_table(results: RttResults) -> str:
    """A Markdown table: one row per figure and system, one column per round trip (measured)."""
    rtts = results["rtts"]
    head = ["figure", "system", *[f"{r['measured_ms']:g} ms" for r in rtts]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric, title in METRICS:
        for key, label in results["meta"]["systems"].items():
            cells = [_fmt(r["figures"].get(metric, {}).get(key)) for r in rtts]
            lines.append("| " + " | ".join([title, label, *cells]) + " |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def write_rtt_json(results: RttResults, path: Path) -> Path:
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def write_rtt_chart(results: RttResults, path: Path) -> Path:
    """Jobs/s against the measured round trip, per system: the no-op drain and enqueue one by one (log scale)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("taskrail bench draws its chart with matplotlib: run make bench, or pip install "
                          "-e '.[bench]'") from exc  # fmt: skip
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    x = [r["measured_ms"] for r in results["rtts"]]
    for ax, metric, title in zip(
        axes, ("drain_noop", "enqueue_one"), ("no-op drain", "enqueue one by one"), strict=True
    ):
        for key, label in results["meta"]["systems"].items():
            ax.plot(x, [r["figures"].get(metric, {}).get(key) for r in results["rtts"]], marker="o", label=label)
        ax.set_yscale("log")
        ax.set_xlabel("round trip between hosts (ms, measured)")
        ax.set_ylabel("jobs/s (log scale)")
        ax.set_title(f"{title} across hosts")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(options: BenchOptions, rtt_text: str) -> int:
    """``taskrail bench --rtt``: measure, print the table, write rtt.json and rtt.png into the output directory."""
    results = run_rtt_bench(options, parse_rtts(rtt_text))
    if options.peers:
        results["meta"]["note"] = "Celery, Dramatiq and BullMQ are not run across hosts (yet): --peers is ignored"
    print()
    print(format_rtt_table(results))
    json_path = write_rtt_json(results, options.out_dir / "rtt.json")
    chart = write_rtt_chart(results, options.out_dir / "rtt.png")
    print(f"\nwrote {json_path} and {chart} ({results['meta']['duration_s']}s)")
    if "note" in results["meta"]:
        print(f"note: {results['meta']['note']}")
    return 0
