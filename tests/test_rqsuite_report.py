"""The rq-suite report on hand-made junit XML: ids, outcomes, the four columns, the table and the files."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.rqsuite import Outcome, compare, format_markdown, format_table, read_junit, write_report

RQ_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
  <testcase classname="tests.test_worker.TestWorker" name="test_work_and_quit" time="0.1"/>
  <testcase classname="tests.test_worker.TestWorker" name="test_horse_fails" time="0.1"/>
  <testcase classname="tests.test_worker.TestWorker" name="test_broken_both" time="0.1">
    <failure message="AssertionError: 1 != 2">long traceback</failure></testcase>
  <testcase classname="tests.test_worker.TestWorker" name="test_slow" time="0"><skipped message="Slow tests disabled"/></testcase>
  <testcase classname="tests.test_worker" name="test_module_level" time="0.1">
    <failure message="boom">x</failure></testcase>
</testsuite></testsuites>
"""

TASKRAIL_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
  <testcase classname="tests.test_worker.TestWorker" name="test_work_and_quit" time="0.1"/>
  <testcase classname="tests.test_worker.TestWorker" name="test_horse_fails" time="0.1">
    <failure message="AssertionError: Job status is finished, not failed&#10;second line">tb</failure></testcase>
  <testcase classname="tests.test_worker.TestWorker" name="test_broken_both" time="0.1">
    <error message="KeyError: 'x'">tb</error></testcase>
  <testcase classname="tests.test_worker.TestWorker" name="test_slow" time="0"><skipped message="Slow tests disabled"/></testcase>
  <testcase classname="tests.test_worker" name="test_module_level" time="0.1"/>
</testsuite></testsuites>
"""


def _runs(tmp_path: Path) -> dict[str, tuple[dict[str, Outcome], dict[str, Outcome]]]:
    (tmp_path / "rq.xml").write_text(RQ_XML)
    (tmp_path / "tr.xml").write_text(TASKRAIL_XML)
    return {"test_worker": (read_junit(tmp_path / "rq.xml"), read_junit(tmp_path / "tr.xml"))}


def test_read_junit_gives_pytest_ids_and_first_failure_lines(tmp_path: Path) -> None:
    rq_run, tr_run = _runs(tmp_path)["test_worker"]
    assert rq_run["tests/test_worker.py::TestWorker::test_work_and_quit"] == Outcome("passed")
    assert rq_run["tests/test_worker.py::test_module_level"].status == "failed"
    assert rq_run["tests/test_worker.py::TestWorker::test_slow"].status == "skipped"
    horse = tr_run["tests/test_worker.py::TestWorker::test_horse_fails"]
    assert horse == Outcome("failed", "AssertionError: Job status is finished, not failed")
    assert tr_run["tests/test_worker.py::TestWorker::test_broken_both"].status == "error"


def test_missing_or_broken_junit_reads_as_no_tests(tmp_path: Path) -> None:
    (tmp_path / "cut.xml").write_text("<testsuites><testsuite>")
    assert read_junit(tmp_path / "absent.xml") == {}
    assert read_junit(tmp_path / "cut.xml") == {}


def test_compare_sorts_each_test_into_one_column(tmp_path: Path) -> None:
    comparison = compare(_runs(tmp_path))
    expected = {"both": 1, "only_rq": 1, "only_taskrail": 1, "failed_both": 1, "skipped": 1}
    assert comparison.counts == {"test_worker": expected}
    assert comparison.total() == expected
    assert comparison.only_rq() == ["tests/test_worker.py::TestWorker::test_horse_fails"]


def test_a_test_absent_from_the_taskrail_run_counts_as_not_passing() -> None:
    comparison = compare({"test_job": ({"tests/test_job.py::test_a": Outcome("passed")}, {})})
    assert comparison.only_rq() == ["tests/test_job.py::test_a"]
    assert comparison.tests["tests/test_job.py::test_a"][1].status == "missing"


def test_table_and_markdown_show_counts_and_the_difference_list(tmp_path: Path) -> None:
    comparison = compare(_runs(tmp_path))
    table = format_table(comparison).splitlines()
    assert table[0].split() == ["file", "passed", "both", "only", "RQ's", "only", "taskrail's", "failed", "both",
                                "skipped", "total"]  # fmt: skip
    assert table[2].split() == ["test_worker", "1", "1", "1", "1", "1", "5"]
    assert table[3].split() == ["total", "1", "1", "1", "1", "1", "5"]
    markdown = format_markdown(comparison, "# heading")
    assert "| test_worker | 1 | 1 | 1 | 1 | 1 | 5 |" in markdown
    assert "- `tests/test_worker.py::TestWorker::test_horse_fails`: failed: AssertionError: Job status" in markdown


def test_write_report_writes_json_and_markdown(tmp_path: Path) -> None:
    json_path, md_path = write_report(compare(_runs(tmp_path)), tmp_path / "out", "# h", {"rq_version": "3.0.0"})
    data = json.loads(json_path.read_text())
    assert data["rq_version"] == "3.0.0"
    assert data["total"]["only_rq"] == 1
    assert data["tests"]["tests/test_worker.py::test_module_level"]["taskrail"]["status"] == "passed"
    assert md_path.read_text().startswith("# h\n")
