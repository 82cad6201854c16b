"""generate_report: the pure steps in this process, then progress and files through a real worker."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tasks import Request, TaskContext, TaskFailed
from tasks.reports import REPORT_TYPES, InvalidReportRequest, UnknownReportType, generate_report
from tests.conftest import Processes, wait_for

REPORTS_ONLY = {"TASKRAIL_IMPORTS": "tasks.reports"}


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("TASKRAIL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run_inline(report_type: str, user_id: int | None) -> tuple[dict[str, Any], list[tuple[float, str | None]]]:
    """Run the task's function here with a context that records each progress report."""
    seen: list[tuple[float, str | None]] = []
    request = Request(id="inline", task=generate_report.name, queue="reports", attempts=1, retries=0)
    context = TaskContext(generate_report, request, lambda _id, percent, note: seen.append((percent, note)))
    return generate_report.func(context, report_type, user_id), seen


def test_report_writes_html_and_csv_and_reports_progress_in_steps(data_dir: Path) -> None:
    outcome, seen = run_inline("sales", 7)
    percents = [p for p, _ in seen]
    assert len(percents) >= 5 and percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert all(note for _, note in seen)
    html_path, csv_path = Path(outcome["path"]), Path(outcome["csv_path"])
    assert html_path == data_dir / "reports" / "sales-user-7.html" and csv_path.suffix == ".csv"
    page = html_path.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "Sales by day and region" in page
    assert f"{outcome['rows']:,} records" in page
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == outcome["csv_rows"] == outcome["days"] * 5
    assert sum(int(r["records"]) for r in rows) == outcome["rows"] > 100_000
    assert sum(float(r["revenue_eur"]) for r in rows) == pytest.approx(outcome["total"], rel=1e-6)
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["sales-user-7.csv", "sales-user-7.html"]


def test_same_request_same_figures_all_users_other_figures(data_dir: Path) -> None:
    first = generate_report("refunds", 3)
    again = generate_report("refunds", 3)
    everyone = generate_report("refunds")
    assert (first["rows"], first["total"]) == (again["rows"], again["total"])
    assert first["total"] != everyone["total"] and Path(everyone["path"]).name == "refunds-all.html"


def test_bad_arguments_fail_before_any_work(data_dir: Path) -> None:
    with pytest.raises(UnknownReportType, match="valid types: " + ", ".join(REPORT_TYPES)):
        generate_report("nonsense")
    for bad in (0, -1, "7", True, 1.5):
        with pytest.raises(InvalidReportRequest, match="user_id"):
            generate_report("sales", bad)  # type: ignore[arg-type]
    assert not (data_dir / "reports").exists()


def test_progress_is_seen_from_outside_and_the_report_exists(settings, procs: Processes, env: dict[str, str]) -> None:
    procs.worker("reports", env=REPORTS_ONLY)
    result = generate_report.delay("sales", 2)
    seen = wait_for(
        lambda: (p := result.progress) and 0 < p["percent"] < 100 and p, 30, 0.01, what="progress while it runs"
    )
    assert seen["note"]
    assert result.state in ("STARTED", "SUCCESS")
    outcome = result.get(timeout=60)
    assert result.progress == {"percent": 100.0, "note": "wrote sales-user-2.html and sales-user-2.csv"}
    path = Path(outcome["path"])
    assert path == Path(env["TASKRAIL_DATA_DIR"]) / "reports" / "sales-user-2.html"
    assert "<svg" in path.read_text() and Path(outcome["csv_path"]).read_text().startswith("date,region,records")
    assert outcome["rows"] > 100_000 and result.attempts == 1


def test_unknown_report_type_fails_at_once(settings, procs: Processes) -> None:
    procs.worker("reports", env=REPORTS_ONLY)
    result = generate_report.delay("quarterly-magic")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=30)
    assert info.value.exc_type == "UnknownReportType"
    assert "'quarterly-magic'" in info.value.message and "sales" in info.value.message
    assert result.state == "FAILURE" and result.attempts == 1
