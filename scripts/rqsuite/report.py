"""Read the junit XML of both runs, compare them test by test, and print and write the table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Comparison", "Outcome", "compare", "format_markdown", "format_table", "read_junit", "write_report"]

PASSED, FAILED, ERROR, SKIPPED, MISSING = "passed", "failed", "error", "skipped", "missing"
COLUMNS = ("both", "only_rq", "only_taskrail", "failed_both", "skipped")
HEADINGS = ("passed both", "only RQ's", "only taskrail's", "failed both", "skipped", "total")


@dataclass(frozen=True)
class Outcome:
    """One test's result in one run; ``message`` is the first line of its failure, if any."""

    status: str
    message: str = ""


@dataclass
class Comparison:
    """Per-file counts of each column and the per-test outcomes both ways."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    tests: dict[str, tuple[Outcome, Outcome]] = field(default_factory=dict)

    def total(self) -> dict[str, int]:
        """The counts summed over the files."""
        return {col: sum(row[col] for row in self.counts.values()) for col in COLUMNS}

    def only_rq(self) -> list[str]:
        """Test ids that pass with RQ's worker and not with ``workers.Worker``, sorted."""
        return sorted(t for t, (rq, tr) in self.tests.items() if rq.status == PASSED and tr.status != PASSED)


def read_junit(path: Path) -> dict[str, Outcome]:
    """Test id (``tests/test_x.py::Class::test_y``) to outcome; an absent or broken file gives nothing."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    found: dict[str, Outcome] = {}
    for case in root.iter("testcase"):
        found[_test_id(case.get("classname", ""), case.get("name", ""))] = _outcome(case)
    return found


def _test_id(classname: str, name: str) -> str:
    parts = classname.split(".")
    # pytest writes "tests.test_x.Class" or "tests.test_x"; the module part ends at the first "test_" segment.
    cut = next((i + 1 for i, part in enumerate(parts) if part.startswith("test_")), len(parts))
    return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])


def _outcome(case: ET.Element) -> Outcome:
    for tag, status in (("failure", FAILED), ("error", ERROR), ("skipped", SKIPPED)):
        found = case.find(tag)
        if found is not None:
            text = (found.get("message") or found.text or "").strip()
            return Outcome(status, text.splitlines()[0][:200] if text else "")
    return Outcome(PASSED)


def _column(rq: Outcome, tr: Outcome) -> str:
    if rq.status == PASSED:
        return "both" if tr.status == PASSED else "only_rq"
    if tr.status == PASSED:
        return "only_taskrail"
    return "skipped" if rq.status == SKIPPED and tr.status == SKIPPED else "failed_both"


def compare(runs: dict[str, tuple[dict[str, Outcome], dict[str, Outcome]]]) -> Comparison:
    """Compare, per file name, RQ's run (first) with taskrail's (second); a test absent from one run is missing."""
    result = Comparison()
    for name, (rq_run, tr_run) in runs.items():
        row = dict.fromkeys(COLUMNS, 0)
        for test in sorted(set(rq_run) | set(tr_run)):
            pair = (rq_run.get(test, Outcome(MISSING)), tr_run.get(test, Outcome(MISSING)))
            result.tests[test] = pair
            row[_column(*pair)] += 1
        result.counts[name] = row
    return result


def _rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for name, row in [*comparison.counts.items(), ("total", comparison.total())]:
        rows.append([name, *(str(row[col]) for col in COLUMNS), str(sum(row.values()))])
    return rows


def format_table(comparison: Comparison) -> str:
    """A plain-text table: one line per file and a total."""
    rows = [["file", *HEADINGS], *_rows(comparison)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def format_markdown(comparison: Comparison, heading: str) -> str:
    """The table and the tests that pass only with RQ's worker (with taskrail's failure line), as Markdown."""
    out = [heading, "", "| file | " + " | ".join(HEADINGS) + " |", "|---" + "|---:" * len(HEADINGS) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in _rows(comparison)]
    out += ["", "## Passing with RQ's worker, not with workers.Worker", ""]
    for test in comparison.only_rq():
        tr = comparison.tests[test][1]
        out.append(f"- `{test}`: {tr.status}" + (f": {tr.message}" if tr.message else ""))
    return "\n".join(out) + "\n"


def write_report(comparison: Comparison, out_dir: Path, heading: str, meta: dict[str, str]) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        **meta,
        "counts": comparison.counts,
        "total": comparison.total(),
        "only_rq": comparison.only_rq(),
        "tests": {t: {"rq": asdict(rq), "taskrail": asdict(tr)} for t, (rq, tr) in comparison.tests.items()},
    }
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(format_markdown(comparison, heading))
    return json_path, md_path
