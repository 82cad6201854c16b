"""What a bench run leaves behind: the printed table, a JSON file and a PNG chart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import ConfigError
from scripts.bench.results import METRICS, Metric, Results
from scripts.bench.systems import SYSTEMS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BASELINE",
    "Rank",
    "format_table",
    "markdown",
    "number",
    "rank_block",
    "ranks",
    "write_chart",
    "write_json",
    "write_markdown",
]

BASELINE = "rq"  # ratios are against RQ's default worker
COLUMNS = tuple(m for m in METRICS if not m.key.startswith("memory"))


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _cell(results: Results, metric: Metric, system: str) -> str:
    value = results.median(metric.key, system)
    if value is None:
        return "-"
    text = number(value)
    if metric.key.startswith("latency"):
        keep_up_s = float(results.meta.get("keep_up_s", 1.0))
        if results.lagging(system, keep_up_s):
            return f"{text}, cannot keep up"
        if results.lagging(BASELINE, keep_up_s):
            return text  # no ratio against a backlog
    base = results.median(metric.key, BASELINE)
    if base and value:
        ratio = value / base if metric.higher_is_better else base / value
        text += f" ({ratio:,.1f}x)"
    return text


def table_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """A row per system: what it fetches per round trip, then each figure with its ratio to RQ's worker."""
    header = ["system", "fetches per round trip", *[f"{m.label} ({m.unit})" for m in COLUMNS]]
    rows = [[label, results.fetch.get(key, "?"), *[_cell(results, m, key) for m in COLUMNS]]
            for key, label in results.systems.items()]  # fmt: skip
    return header, rows


def memory_line(results: Results) -> str:
    parts = []
    for key in results.memory_samples:
        start, end, drift = (results.median(m, key) for m in ("memory_start_mb", "memory_end_mb", "memory_drift_pct"))
        if start is not None and end is not None and drift is not None:
            jobs = results.figures["memory_end_mb"][key]["jobs"]
            parts.append(f"{results.systems[key]}: {start:.1f} MB at start, {end:.1f} MB after {jobs:,} jobs "
                         f"(drift {drift:.2f}%)")  # fmt: skip
    return "Worker memory (VmRSS, the larger of the two workers): " + "; ".join(parts) if parts else ""


FAMILIES = {"rq": "RQ", "taskrail": "taskrail", "celery": "Celery", "dramatiq": "Dramatiq", "bullmq": "BullMQ",
            "huey": "Huey"}  # fmt: skip
RANKED = ("enqueue_one", "enqueue_bulk", "drain_noop", "drain_io", "latency_p50", "latency_p99")


@dataclass(frozen=True)
class Rank:
    """taskrail's place in one column: each family counted once, at its best configuration in the run."""

    metric: Metric
    place: int  # 1 = first
    families: int  # how many families have a figure in the column
    best: tuple[str, float]  # taskrail's best configuration (system key) and its figure
    first: tuple[str, float]  # the best configuration of the column (taskrail's own when it is first)


def _family(system: str) -> str:
    return next((s.family for s in SYSTEMS if s.key == system), system)


def ranks(results: Results) -> list[Rank]:
    """taskrail's rank per column against every family at its best. A latency that cannot keep up (its
    backlog grew) is not a figure to rank; the enqueue columns rank producers (one per family)."""
    keep_up_s = float(results.meta.get("keep_up_s", 1.0))
    out = []
    for metric in (m for m in METRICS if m.key in RANKED):
        best: dict[str, tuple[str, float]] = {}  # family -> its best (system, figure)
        for system in results.systems:
            value = results.median(metric.key, system)
            if value is None or (metric.key.startswith("latency") and results.lagging(system, keep_up_s)):
                continue
            family = _family(system)
            held = best.get(family)
            if held is None or (value > held[1] if metric.higher_is_better else value < held[1]):
                best[family] = (system, value)
        if "taskrail" not in best:
            continue
        order = sorted(best.values(), key=lambda sv: -sv[1] if metric.higher_is_better else sv[1])
        ours = best["taskrail"]
        place = 1 + sum(1 for _, v in order if (v > ours[1] if metric.higher_is_better else v < ours[1]))
        out.append(Rank(metric, place, len(best), ours, order[0]))
    return out


def _holder(results: Results, metric: Metric, system: str) -> str:
    """Who holds a figure: the configuration, or for an enqueue column the family's producer."""
    if metric.key.startswith("enqueue"):
        return FAMILIES.get(_family(system), system) + "'s producer"
    return results.systems[system]


def rank_block(results: Results) -> str:
    """The ranks as a markdown table: taskrail's best figure, its place, and who is first when it is not."""
    lines = ["| column | taskrail at its best | place | first |", "| --- | --- | ---: | --- |"]
    for r in ranks(results):
        ours = f"{number(r.best[1])} {r.metric.unit} ({_holder(results, r.metric, r.best[0])})"
        first = (
            "taskrail"
            if r.place == 1
            else (f"{number(r.first[1])} {r.metric.unit} ({_holder(results, r.metric, r.first[0])})")
        )
        lines.append(f"| {r.metric.label} | {ours} | {r.place} of {r.families} | {first} |")
    return "\n".join(lines)


def format_table(results: Results, markdown: bool = False) -> str:
    """Each figure per system, with how many times better than RQ's default worker it is."""
    header, rows = table_rows(results)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- ", " --- "] + [" ---: "] * len(COLUMNS)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(row))
             for row in [header, *rows]]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def legend(results: Results) -> str:
    options = results.meta.get("options", {})
    return (
        "(x) = times better than RQ's default worker (for latency: times lower). Latency at "
        f'{options.get("rate", "?"):g} jobs/s; "cannot keep up": the last tenth of the jobs started more than '
        f"{results.meta.get('keep_up_s', 1.0):g} s after their enqueue (a backlog grew), so no ratio is given."
    )


def write_markdown(results: Results, path: Path) -> Path:
    """The table and the conditions, as docs/benchmarks.md shows them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(results) + "\n")
    return path


def markdown(results: Results) -> str:
    meta = results.meta
    names = {"redis": "redis-py"}
    versions = ", ".join(f"{names.get(name, name)} {v}" for name, v in meta["versions"].items())
    load = "/".join(f"{x:.2f}" for x in meta["load_average_start"])
    load_end = "/".join(f"{x:.2f}" for x in meta.get("load_average_end", ()))
    lines = [
        format_table(results, markdown=True),
        "",
        legend(results),
        "",
        "taskrail's place per column, each family (RQ, Celery, Dramatiq, BullMQ, Huey, taskrail) counted once, at "
        "its best configuration in this run (the enqueue columns compare producers: every configuration of a "
        "family shares its producer's figures):",
        "",
        rank_block(results),
        *(["", memory_line(results)] if memory_line(results) else []),
        "",
        f"- Command: `{meta['command']}` ({meta['duration_s']} s, {meta['date']})",
        f"- Machine: {meta['cpus']} cores, {meta['cpu_model']}; Python {meta['python']}; "
        f"server {meta['server']} ({meta['server_source']})",
        f"- Versions: {versions}",
        f"- Load average (1/5/15 min) at the start: {load}; at the end: {load_end}",
        *[f"- Note: {note}" for note in results.notes],
    ]
    return "\n".join(lines)


def write_json(results: Results, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    return path


def write_chart(results: Results, path: Path) -> Path:
    """Throughputs and latencies side by side (log scale), and taskrail's memory over the long run."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError(
            "taskrail bench draws its chart with matplotlib, which is not installed: "
            "run make bench, or pip install -e '.[bench]'"
        ) from exc
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (ax_rate, ax_lat, ax_mem) = plt.subplots(1, 3, figsize=(20, 7), gridspec_kw={"width_ratios": [4, 3, 3]})
    _bars(ax_rate, results, ["enqueue_one", "enqueue_bulk", "drain_noop", "drain_io"], "jobs/s (log scale)")
    _bars(ax_lat, results, ["latency_p50", "latency_p95", "latency_p99"], "ms from enqueue to start (log scale)")
    ax_lat.set_title(f"latency at {results.meta['options']['rate']:g} jobs/s (lower is better)")
    ax_rate.set_title("throughput (higher is better)")
    for key, samples in results.memory_samples.items():
        jobs = [done for done, _ in samples]
        for i in range(len(samples[0][1]) if samples else 0):
            ax_mem.plot(
                jobs, [mbs[i] for _, mbs in samples], marker=".", label=f"{results.systems[key]} worker {i + 1}"
            )
    ax_mem.set_title("worker resident memory")
    ax_mem.set_xlabel("jobs completed")
    ax_mem.set_ylabel("MB (VmRSS)")
    peak = max((mb for samples in results.memory_samples.values() for _, mbs in samples for mb in mbs), default=1)
    ax_mem.set_ylim(0, peak * 1.25)
    if results.memory_samples:
        ax_mem.legend(fontsize=8, loc="lower right")
    else:
        ax_mem.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax_mem.transAxes)
    meta = results.meta
    fig.suptitle(f"taskrail bench, {meta['date']}: {meta['cpus']} cores ({meta['cpu_model']}), "
                 f"{meta['workers_per_system']} worker processes per system, {meta['server']}")  # fmt: skip
    handles, names = ax_rate.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncols=min(6, len(names)), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _bars(ax: Axes, results: Results, metrics: list[str], ylabel: str) -> None:
    systems = list(results.systems)
    labels = {m.key: m.label for m in METRICS}
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs, heights = [], []
        for j, metric in enumerate(metrics):
            value = results.figures.get(metric, {}).get(system, {}).get("median")
            if value:
                xs.append(j + i * width - 0.4 + width / 2)
                heights.append(value)
        bars = ax.bar(xs, heights, width, label=results.systems[system])
        ax.bar_label(bars, labels=[_short(h) for h in heights], fontsize=7, rotation=90, padding=2)
    ax.set_xticks(range(len(metrics)), [labels[m] for m in metrics], fontsize=9)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    top = max((v.get("median") or 0 for m in metrics for v in results.figures.get(m, {}).values()), default=1)
    ax.set_ylim(top=top * 4)  # room for the value labels above the bars


def _short(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}" if value >= 10 else f"{value:.1f}"
