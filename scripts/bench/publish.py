"""The benchmark figures in the docs, regenerated from the committed run (``docs/benchmarks.json``).

``taskrail bench --write-docs`` does it after a run (and commits that run's results.json to the docs);
``taskrail bench --docs-only`` redoes it from the committed file without measuring. The generated
blocks sit between markers in docs/benchmarks.md and README.md; tests/test_bench.py checks that
they match the committed file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from config.errors import ConfigError
from scripts.bench.harness import ROOT
from scripts.bench.report import markdown, number, write_chart
from scripts.bench.results import Results

__all__ = ["COMMITTED", "expected_blocks", "load", "publish", "replace_block"]

COMMITTED = ROOT / "docs" / "benchmarks.json"
DOCS = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
CHART = ROOT / "docs" / "benchmarks.png"
MARKERS = {DOCS: "results", README: "bench-figures"}
README_SYSTEMS = ("rq", "rq_simple", "taskrail", "taskrail_threads", "taskrail_async")  # those the run has
OWN = "taskrail"  # systems named from this prefix are never the "fastest peer"


def load(path: Path = COMMITTED) -> Results:
    try:
        return Results.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: cannot read bench results ({exc}); run taskrail bench first") from exc


def expected_blocks(results: Results) -> dict[Path, str]:
    """What each generated block of the docs must hold for ``results``."""
    return {DOCS: markdown(results), README: readme_figures(results)}


def readme_figures(results: Results) -> str:
    """The README's short table: taskrail, RQ and the fastest peer configuration per drain."""
    peers = [key for key in results.systems if key not in README_SYSTEMS and not key.startswith(OWN)]
    shown = [key for key in README_SYSTEMS if key in results.systems]
    lines = ["| figure | " + " | ".join(results.systems[k] for k in shown) + " | fastest peer |",
             "| --- |" + " ---: |" * (len(shown) + 1)]  # fmt: skip
    for metric, title in (("drain_noop", "no-op drain (jobs/s)"), ("drain_io", "20 ms I/O drain (jobs/s)")):
        cells = [_value(results, metric, k) for k in shown]
        ranked = sorted((v, k) for k in peers if (v := results.median(metric, k)) is not None)
        best = f"{number(ranked[-1][0])} ({results.systems[ranked[-1][1]]})" if ranked else "not run"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {best} |")
    meta = results.meta
    lines += ["", f"Measured with `{meta['command']}` on {meta['date']} ({meta['cpus']} cores, {meta['server']}); "
              "every figure, peer and condition: [docs/benchmarks.md](docs/benchmarks.md)."]  # fmt: skip
    return "\n".join(lines)


def _value(results: Results, metric: str, system: str) -> str:
    value = results.median(metric, system)
    return "-" if value is None else number(value)


def replace_block(text: str, marker: str, body: str, where: Path) -> str:
    pattern = re.compile(rf"(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)", re.S)
    if not pattern.search(text):
        raise ConfigError(f"{where}: no <!-- {marker} --> ... <!-- /{marker} --> block to fill; add the markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def read_block(path: Path) -> str:
    """The generated block of ``path`` as it stands."""
    marker = MARKERS[path]
    found = re.search(rf"<!-- {marker} -->\n(.*?)\n<!-- /{marker} -->", path.read_text(), re.S)
    return found.group(1) if found else ""


def publish(source: Path = COMMITTED) -> list[Path]:
    """Copy ``source`` to the committed file (if it is another), then regenerate the docs' blocks and chart."""
    results = load(source)
    if source.resolve() != COMMITTED.resolve():
        shutil.copyfile(source, COMMITTED)
    for path, body in expected_blocks(results).items():
        path.write_text(replace_block(path.read_text(), MARKERS[path], body, path))
    write_chart(results, CHART)
    return [COMMITTED, DOCS, README, CHART]
