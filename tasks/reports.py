"""The ``generate_report`` task: CPU-bound work that turns synthetic orders into an HTML report and a CSV.

The data is synthetic but deterministic: one quarter of records per report type, seeded by the type
and ``user_id``, so the same request always gives the same figures. Aggregation is plain Python on
purpose (this is the demo's CPU-bound job); the HTML is self-contained, with an inline SVG chart.
"""

from __future__ import annotations

import csv
import html
import io
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from config.errors import TaskError
from config.settings import load_settings
from tasks import task
from tasks.core.context import TaskContext
from tasks.files import write_atomic

__all__ = ["REPORT_TYPES", "InvalidReportRequest", "ReportKind", "UnknownReportType", "generate_report"]

PERIOD_START = date(2026, 1, 1)
DAYS = 90
REGIONS = ("North", "South", "East", "West", "Central")
COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f")
GENERATE_CHUNKS = 6  # progress is reported after each chunk of days


@dataclass(frozen=True)
class ReportKind:
    """One kind of report: what a record measures and how its synthetic values are drawn."""

    title: str
    measure: str
    unit: str
    records_per_day: int
    mu: float  # log-normal parameters of one record's value
    sigma: float
    weekend_factor: float  # how busy Saturday and Sunday are compared with weekdays


REPORT_TYPES: dict[str, ReportKind] = {
    "sales": ReportKind("Sales by day and region", "revenue", "EUR", 4500, 3.6, 0.7, 1.4),
    "signups": ReportKind("Sign-ups by day and region", "seats", "seats", 4500, 0.6, 0.5, 0.6),
    "refunds": ReportKind("Refunds by day and region", "refunded", "EUR", 4000, 3.0, 0.9, 1.1),
}


class ReportError(TaskError):
    """Raised when a report cannot be made from the arguments given."""


class UnknownReportType(ReportError):
    """Raised when ``report_type`` is not one of ``REPORT_TYPES``; never retried."""


class InvalidReportRequest(ReportError):
    """Raised when ``user_id`` is not a positive integer or None; never retried."""


Cell = tuple[int, str]  # (day index, region)


@task(queue="reports", bind=True, time_limit=600)
def generate_report(self: TaskContext, report_type: str, user_id: int | None = None) -> dict[str, Any]:
    """Build the report: generate, aggregate, summarise, chart, render and write, reporting progress at each step.

    Returns:
        ``{"report_type", "user_id", "path" (HTML), "csv_path", "rows", "csv_rows", "days", "total", "unit"}``.
    """
    kind = _check(report_type, user_id)
    rng = random.Random(f"{report_type}:{user_id}")
    self.update_progress(0, f"generating {kind.records_per_day * DAYS:,} synthetic records")
    cells: dict[Cell, list[float]] = defaultdict(list)
    rows = 0
    step = -(-DAYS // GENERATE_CHUNKS)
    for first in range(0, DAYS, step):
        rows += _generate(rng, kind, range(first, min(first + step, DAYS)), cells)
        self.update_progress(60 * min(first + step, DAYS) / DAYS, f"generated {rows:,} records")
    table = _aggregate(cells)
    self.update_progress(70, "aggregated per day and region")
    summary = _summarise(table, cells)
    self.update_progress(80, "summarised")
    chart = _svg_chart(table)
    self.update_progress(88, "drew the chart")
    name = f"{report_type}-{'all' if user_id is None else f'user-{user_id}'}"
    directory = load_settings().reports_dir
    csv_path = _write_atomic(directory / f"{name}.csv", _csv(table, kind))
    html_path = _write_atomic(directory / f"{name}.html", _html(kind, user_id, rows, summary, chart))
    self.update_progress(100, f"wrote {html_path.name} and {csv_path.name}")
    return {
        "report_type": report_type,
        "user_id": user_id,
        "path": str(html_path),
        "csv_path": str(csv_path),
        "rows": rows,
        "csv_rows": len(table),
        "days": DAYS,
        "total": round(summary["total"], 2),
        "unit": kind.unit,
    }


def _check(report_type: object, user_id: object) -> ReportKind:
    if not isinstance(report_type, str) or report_type not in REPORT_TYPES:
        raise UnknownReportType(f"unknown report type {report_type!r}; valid types: {', '.join(REPORT_TYPES)}")
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1):
        raise InvalidReportRequest(f"user_id must be a positive integer or None, got {user_id!r}")
    return REPORT_TYPES[report_type]


def _generate(rng: random.Random, kind: ReportKind, days: range, cells: dict[Cell, list[float]]) -> int:
    """Draw each day's records into ``cells``; returns how many were drawn."""
    region_weights = [rng.uniform(0.5, 1.5) for _ in REGIONS]
    drawn = 0
    for day in days:
        weekend = (PERIOD_START + timedelta(days=day)).weekday() >= 5
        trend = 1 + day / (2 * DAYS)  # a gentle growth over the quarter
        count = int(kind.records_per_day * trend * (kind.weekend_factor if weekend else 1.0) * rng.uniform(0.85, 1.15))
        for region in rng.choices(REGIONS, weights=region_weights, k=count):
            cells[(day, region)].append(round(rng.lognormvariate(kind.mu, kind.sigma), 2))
        drawn += count
    return drawn


def _aggregate(cells: dict[Cell, list[float]]) -> dict[Cell, tuple[int, float]]:
    """Count and sum per (day, region), every cell present, in day then region order."""
    table: dict[Cell, tuple[int, float]] = {}
    for day in range(DAYS):
        for region in REGIONS:
            values = cells.get((day, region), [])
            table[(day, region)] = (len(values), sum(values))
    return table


def _summarise(table: dict[Cell, tuple[int, float]], cells: dict[Cell, list[float]]) -> dict[str, Any]:
    by_region = {r: sum(table[(d, r)][1] for d in range(DAYS)) for r in REGIONS}
    by_day = [sum(table[(d, r)][1] for r in REGIONS) for d in range(DAYS)]
    values = sorted(v for bucket in cells.values() for v in bucket)
    best = max(range(DAYS), key=by_day.__getitem__)
    return {
        "total": sum(by_region.values()),
        "by_region": by_region,
        "best_day": (PERIOD_START + timedelta(days=best)).isoformat(),
        "best_day_total": by_day[best],
        "median": values[len(values) // 2] if values else 0.0,
        "p95": values[int(len(values) * 0.95)] if values else 0.0,
    }


def _svg_chart(table: dict[Cell, tuple[int, float]], width: int = 900, height: int = 260) -> str:
    """A stacked bar per day, one colour per region, as inline SVG."""
    totals = [sum(table[(d, r)][1] for r in REGIONS) for d in range(DAYS)]
    top = max(totals) or 1.0
    bar = width / DAYS
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" role="img">']
    for day in range(DAYS):
        y = float(height)
        for region, color in zip(REGIONS, COLORS, strict=True):
            h = table[(day, region)][1] / top * height
            y -= h
            parts.append(f'<rect x="{day * bar:.1f}" y="{y:.1f}" width="{bar * 0.85:.1f}" height="{h:.1f}" '
                         f'fill="{color}"><title>{region}</title></rect>')  # fmt: skip
    for month in range(3):
        x = (date(2026, month + 1, 1) - PERIOD_START).days * bar
        parts.append(f'<text x="{x:.1f}" y="{height + 15}" font-size="12">{date(2026, month + 1, 1):%b %Y}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _csv(table: dict[Cell, tuple[int, float]], kind: ReportKind) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "region", "records", f"{kind.measure}_{kind.unit.lower()}"])
    for (day, region), (count, total) in table.items():
        writer.writerow([(PERIOD_START + timedelta(days=day)).isoformat(), region, count, f"{total:.2f}"])
    return out.getvalue()


def _html(kind: ReportKind, user_id: int | None, rows: int, summary: dict[str, Any], chart: str) -> str:
    who = "all users" if user_id is None else f"user {user_id}"
    legend = " ".join(f'<span style="color:{c}">&#9632;</span> {r}' for r, c in zip(REGIONS, COLORS, strict=True))
    region_rows = "".join(
        f"<tr><td>{html.escape(r)}</td><td>{v:,.2f}</td></tr>" for r, v in summary["by_region"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(kind.title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:right}}</style></head>
<body><h1>{html.escape(kind.title)}</h1>
<p>Synthetic data for {who}, {DAYS} days from {PERIOD_START.isoformat()}: {rows:,} records,
total {kind.measure} {summary["total"]:,.2f} {html.escape(kind.unit)}.
Best day {summary["best_day"]} ({summary["best_day_total"]:,.2f}); median record {summary["median"]:,.2f},
95th percentile {summary["p95"]:,.2f}.</p>
{chart}
<p>{legend}</p>
<table><tr><th>Region</th><th>{html.escape(kind.measure)} ({html.escape(kind.unit)})</th></tr>{region_rows}</table>
</body></html>
"""


def _write_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, text.encode("utf-8"))
