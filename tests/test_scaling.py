"""Scaling profiles: the shipped file, and every malformed case with the message that names the fix."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.scaling import Autoscale, load_profile, load_scaling
from tests.conftest import BIN, ROOT
from workers.exitcodes import RET_CONFIG, RET_OK

SHIPPED = ROOT / "config" / "scaling.yaml"

GOOD = """
queues: [critical, email, reports]
profiles:
  p:
    mode: strict
    defaults: {shutdown_timeout_s: 5, max_restarts: 3}
    queues:
      critical: {workers: 1, also: [reports]}
      email: {workers: 2, concurrency: 4, autoscale: {min: 1, max: 4, backlog_per_worker: 10}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scaling.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_file_has_dev_and_production_in_priority_order() -> None:
    scaling = load_scaling(SHIPPED)
    assert scaling.queues == ("critical", "email", "reports", "default", "bulk")
    assert {"dev", "production"} <= set(scaling.profiles)
    production = scaling.profile("production")
    assert production.mode == "weighted"
    assert [q.name for q in production.queues] == list(scaling.queues)
    email = production.queue("email")
    assert email.autoscale == Autoscale(min=2, max=8, backlog_per_worker=200, max_wait_s=30, cooldown_s=60)
    assert email.rate_limit == "20/s" and email.concurrency == 16 and email.max_jobs == 100000
    assert production.queue("critical").listens == ("critical", "default")
    assert production.queue("reports").shutdown_timeout_s == 120  # a queue's own value beats the defaults


def test_defaults_fill_in_and_unlisted_queues_get_no_workers(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD), "p")
    critical, email, reports = profile.queues
    assert critical.also == ("reports",) and critical.shutdown_timeout_s == 5 and critical.max_restarts == 3
    assert email.workers == 2 and email.concurrency == 4 and email.autoscale is not None
    assert reports.workers == 0 and reports.max_seconds == 60  # built-in default
    assert profile.total_workers == 3 and profile.unserved() == ()
    assert profile.with_workers({"email": 4}).queue("email").workers == 4


MALFORMED = [
    pytest.param(
        GOOD.replace("{workers: 2,", "{wrkers: 2,"),
        ["profile 'p': queue 'email': unknown key 'wrkers' (did you mean 'workers'?)", "allowed keys:"],
        id="unknown-key",
    ),
    pytest.param(
        GOOD.replace("{workers: 1,", "{workers: -1,"),
        ["profile 'p': queue 'critical': workers must be an integer 0 or more, got -1; fix the value"],
        id="negative-count",
    ),
    pytest.param(
        GOOD.replace("      email:", "      emails:"),
        ["profile 'p': unknown queue 'emails' (did you mean 'email'?)", "add it to the top-level 'queues' list"],
        id="unknown-queue",
    ),
    pytest.param(
        GOOD.replace("also: [reports]", "also: [nope]"),
        ["queue 'critical': also: unknown queue 'nope'"],
        id="unknown-helper-queue",
    ),
    pytest.param(
        GOOD.replace("also: [reports]", "also: [critical]"),
        ["also: 'critical' is not lower in priority than 'critical'"],
        id="helper-not-lower",
    ),
    pytest.param(
        GOOD.replace("{workers: 2,", "{"), ["workers (0) must lie within autoscale min..max (1..4)"], id="outside-range"
    ),
    pytest.param(
        GOOD.replace("min: 1, max: 4", "min: 5, max: 4"),
        ["autoscale: min (5) is above max (4); swap them"],
        id="min-above-max",
    ),
    pytest.param(
        GOOD.replace(", backlog_per_worker: 10", ""),
        ["autoscale: no trigger: give backlog_per_worker"],
        id="no-trigger",
    ),
    pytest.param(
        GOOD.replace("concurrency: 4", "concurrency: 4, isolation: fork"),
        ["isolation 'fork' runs one job at a time; set concurrency to 1"],
        id="fork-with-threads",
    ),
    pytest.param(
        GOOD.replace("concurrency: 4", "rate_limit: fast"), ["rate_limit must look like '20/s'"], id="bad-rate"
    ),
    pytest.param(GOOD.replace("mode: strict", "mode: fair"), ["mode must be 'strict' or 'weighted'"], id="bad-mode"),
    pytest.param(GOOD.replace("{workers: 1,", "{workers: true,"), ["workers must be an integer"], id="bool-count"),
    pytest.param(GOOD + "extra: 1\n", ["unknown key 'extra'; allowed keys: queues, profiles"], id="unknown-top-key"),
    pytest.param(
        GOOD.replace("[critical, email, reports]", "[critical, email, reports, email]"),
        ["queues: 'email' is listed twice"],
        id="duplicate-queue",
    ),
    pytest.param(
        GOOD.replace("{workers: 1,", "{workers: 0,")
        .replace("{workers: 2,", "{workers: 0,")
        .replace(", autoscale: {min: 1, max: 4, backlog_per_worker: 10}", ""),
        ["no queue has workers, nothing would run"],
        id="nothing-runs",
    ),
    pytest.param(
        GOOD.replace("shutdown_timeout_s: 5", "shutdown_timeout_s: .nan"),
        ["shutdown_timeout_s must be a finite number 0 or more, got nan"],
        id="nan-seconds",
    ),
    pytest.param(
        GOOD.replace("backlog_per_worker: 10", "backlog_per_worker: 10, max_wait_s: .inf"),
        ["max_wait_s must be a finite number of seconds above 0, got inf"],
        id="infinite-seconds",
    ),
    pytest.param("queues: [a\nprofiles: {", ["invalid YAML at line", "fix the syntax"], id="invalid-yaml"),
    pytest.param("- just\n- a list\n", ["expected a mapping with 'queues' and 'profiles'"], id="not-a-mapping"),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_malformed_profile_names_file_profile_key_and_fix(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_profile(path, "p")
    message = str(info.value)
    assert message.startswith(str(path)), message
    for part in expected:
        assert part in message, message


def test_missing_profile_lists_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no profile 'q'; profiles in this file: p \(choose one with --profile"):
        load_profile(write(tmp_path, GOOD), "q")
    with pytest.raises(ConfigError, match=r"no profile 'prodution' \(did you mean 'production'\?\)"):
        load_profile(SHIPPED, "prodution")


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the scaling file .*TASKRAIL_SCALING_FILE"):
        load_scaling(tmp_path / "nope.yaml")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("{workers: 1,", "{workers: -1,").replace("concurrency: 4", "concurency: 4")
    with pytest.raises(ConfigError) as info:
        load_profile(write(tmp_path, text), "p")
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and "workers must be" in lines[0] and "unknown key 'concurency'" in lines[1]


def taskrail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "taskrail"), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_profile_check_and_show_on_the_command_line(tmp_path: Path) -> None:
    ok = taskrail("profile", "check", str(SHIPPED))
    assert ok.returncode == RET_OK, ok.stderr
    assert "OK: 5 queues; profiles: dev (4 workers), production (9 workers)" in ok.stdout
    bad = taskrail("profile", "check", str(write(tmp_path, GOOD.replace("{workers: 2,", "{workers: -2,"))))
    assert bad.returncode == RET_CONFIG
    assert "profile 'p': queue 'email': workers must be an integer 0 or more, got -2" in bad.stderr
    show = taskrail("profile", "show", "production", "--file", str(SHIPPED))
    assert show.returncode == RET_OK, show.stderr
    assert "critical,default" in show.stdout and "2..8 (200/worker, wait>30s; cooldown 60s)" in show.stdout
    assert "total: 9 worker processes (up to 22 with autoscale)" in show.stdout
