"""deploy/monitoring/: Prometheus alert rules under `promtool test rules`, and the Grafana dashboard's JSON.

promtool comes from Debian's ``prometheus`` package (``make promtool``, run by ``make test``: .ci/promtool).
Without it these tests skip with the reason, except on CI (``CI`` set), where they fail.
The dashboard is checked against Grafana's own schema as grafana-foundation-sdk models it: a round
trip through its ``Dashboard`` keeps every field (an unknown or misspelt one would be dropped).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import generate_latest

from tests.conftest import BIN, ROOT
from workers.metrics import build_registry

MONITORING = ROOT / "deploy" / "monitoring"
RULES, RULE_TESTS, DASHBOARD = (
    MONITORING / "alerts.yaml",
    MONITORING / "alerts.test.yaml",
    MONITORING / "grafana-dashboard.json",
)
METRIC = re.compile(r"\btaskrail_[a-z_]+\b")


def _promtool() -> str:
    found = BIN / "promtool" if (BIN / "promtool").exists() else shutil.which("promtool")
    if found:
        return str(found)
    why = "promtool is not installed: `make promtool` unpacks it from Debian's prometheus package (.ci/promtool)"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def _run(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _exprs() -> list[str]:
    return [target["expr"] for panel in _dashboard()["panels"] for target in panel["targets"]]


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = _run("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_loosened_threshold_fails_the_rule_tests(tmp_path: Path) -> None:
    """The unit tests pin the thresholds: an alert that no longer fires is caught."""
    rules = RULES.read_text()
    assert "taskrail_queue_oldest_job_age_seconds > 300" in rules
    (tmp_path / RULES.name).write_text(rules.replace("oldest_job_age_seconds > 300", "oldest_job_age_seconds > 3000"))
    shutil.copy(RULE_TESTS, tmp_path)
    tested = _run("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert tested.returncode != 0 and "TaskrailOldestJobWaiting" in tested.stdout + tested.stderr


def test_every_alert_is_tested_and_points_at_a_runbook_that_exists() -> None:
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case.get("exp_alerts")}  # fmt: skip
    operations = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", operations, re.M)
    }
    for rule in _alerts():
        assert rule["alert"] in tested, f"{rule['alert']} has no promtool test that makes it fire"
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, f"{rule['alert']}: no heading for #{anchor}"


def test_rules_and_dashboard_use_only_metrics_taskrail_serves(conn: redis.Redis) -> None:
    served = set()
    for line in generate_latest(build_registry(conn)).decode().splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            served |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    used = set(METRIC.findall(RULES.read_text())) | {m for e in _exprs() for m in METRIC.findall(e)}
    assert used and used <= served, f"not served: {sorted(used - served)}"


def test_dashboard_is_a_valid_grafana_dashboard() -> None:
    data = _dashboard()
    back = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    lost = _lost(data, back)
    assert not lost, f"fields Grafana's dashboard schema does not know (or of the wrong shape): {lost}"
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids)) and data["uid"] and data["title"]
    cells: set[tuple[int, int]] = set()
    for panel in data["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        assert {t["datasource"]["uid"] for t in panel["targets"]} == {"${datasource}"}


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [{"record": f"taskrail:panel_{i}", "expr": expr} for i, expr in enumerate(_exprs())]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    checked = _run("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _lost(ours: Any, back: Any, path: str = "") -> list[str]:
    """Paths of values in ``ours`` that the round trip dropped or changed (defaults it added are fine)."""
    if isinstance(ours, dict):
        if not isinstance(back, dict):
            return [path]
        return [
            p for k, v in ours.items() for p in (_lost(v, back[k], f"{path}/{k}") if k in back else [f"{path}/{k}"])
        ]
    if isinstance(ours, list):
        if not isinstance(back, list) or len(ours) != len(back):
            return [path]
        return [p for i, (a, b) in enumerate(zip(ours, back, strict=True)) for p in _lost(a, b, f"{path}[{i}]")]
    return [] if ours == back else [path]
