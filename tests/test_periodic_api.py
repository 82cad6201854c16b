"""Periodic tasks in code with Celery's API: crontab, schedule, add_periodic_task, beat_schedule, expires."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from config import ConfigError, load_settings
from config.settings import Settings
from tasks import schedules
from tasks.schedules import add_beat_schedule, add_periodic_task, code_schedules, crontab, schedule
from tests import tasks_sched
from tests.conftest import BIN, Processes, live_workers, wait_for
from tests.test_periodic import PROFILE, _periodic_jobs
from workers.periodic import PERIODIC_KEY, PeriodicScheduler, check_schedules


@pytest.fixture(autouse=True)
def no_code_schedules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no schedules registered in code in this process."""
    monkeypatch.setattr(schedules, "_SCHEDULES", {})


def test_celery_schedule_objects_become_cron_lines_and_intervals() -> None:
    assert crontab().cron == "* * * * *"
    assert crontab(minute=30, hour=7, day_of_week="mon-fri").cron == "30 7 * * mon-fri"
    assert crontab(minute=0, hour=0, day_of_month="1", month_of_year="*/3").cron == "0 0 1 */3 *"
    assert schedule(timedelta(minutes=2)).seconds == 120 and schedule(5.5).seconds == 5.5
    with pytest.raises(ConfigError, match=r"crontab.*minute=61.*is not a valid schedule"):
        crontab(minute=61)


def test_add_periodic_task_registers_celery_entries_in_the_periodic_file_shape() -> None:
    tick = tasks_sched.tick
    assert add_periodic_task(10.0, tick.s("a"), name="add every 10", expires=5, queue="q") == "add every 10"
    add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), tick.s(), args=("b",))
    add_periodic_task("*/5 * * * *", "tests.tasks_sched.tick", kwargs={"name": "c"}, name="by-name")
    add_beat_schedule({"nightly": {"task": "tests.tasks_sched.tick", "schedule": timedelta(hours=24), "args": ["d"]}})
    found = code_schedules()
    assert found["add every 10"] == {"task": "tests.tasks_sched.tick", "every_s": 10.0, "args": ["a"], "kwargs": {},
                                     "queue": "q", "expires_s": 5}  # fmt: skip
    (weekly,) = [v for k, v in found.items() if k.startswith("tests.tasks_sched.tick:")]
    assert weekly["cron"] == "30 7 * * 1" and weekly["args"] == ["b"]
    assert found["by-name"]["cron"] == "*/5 * * * *" and found["nightly"]["every_s"] == 86400
    with pytest.raises(ConfigError, match="'by-name' is already registered with another schedule"):
        add_periodic_task(60, tick.s("other"), name="by-name")
    with pytest.raises(ConfigError, match="schedule must be crontab"):
        add_periodic_task([1], tick.s("x"))
    with pytest.raises(ConfigError, match="option 'retry' is not supported here"):
        add_periodic_task(1, tick.s("x"), retry=True)


def test_all_sources_merge_and_bad_or_clashing_entries_are_reported(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "periodic.yaml"
    path.write_text("periodic:\n  shared:\n    task: tests.tasks_sched.tick\n    every_s: 5\n    args: [yaml]\n")
    beat = {
        "from-settings": {"task": "tests.tasks_sched.tick", "schedule": "0 * * * *", "args": ["s"]},
        "shared": {"task": "tests.tasks_sched.tick", "schedule": 3, "args": ["clash"]},
        "late": {"task": "tests.tasks_sched.tick", "schedule": 3, "args": ["x"], "options": {"expires": -1}},
    }
    add_periodic_task(2, tasks_sched.tick.s("code"), name="from code")
    add_periodic_task(2, "tests.nope", name="unknown task")
    env = {"TASKRAIL_PERIODIC_FILE": str(path), "TASKRAIL_BEAT_SCHEDULE": json.dumps(beat)}
    entries, problems = check_schedules(load_settings(env))
    assert sorted(e.name for e in entries) == ["from code", "from-settings", "shared"]
    assert problems == [
        f"the beat_schedule setting: periodic 'shared': the name is also used in {path}; rename one of them",
        "the beat_schedule setting: periodic 'late': expires_s must be a number of seconds > 0 "
        "(a late occurrence is skipped), got -1",
        "code: periodic 'unknown task': task 'tests.nope' is not registered here; fix the name, or add the module "
        "that defines it to TASKRAIL_IMPORTS",
    ]
    with pytest.raises(ConfigError, match=r"TASKRAIL_BEAT_SCHEDULE as JSON.*invalid JSON"):
        load_settings({"TASKRAIL_BEAT_SCHEDULE": "{nope"})


def test_an_occurrence_later_than_expires_is_skipped_and_an_earlier_one_expires_with_it(
    settings: Settings, conn: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "periodic.yaml"
    path.write_text("periodic: {}\n")
    add_periodic_task(60, tasks_sched.tick.s("hourly"), name="minutely", expires=10)
    scheduler = PeriodicScheduler(conn, settings.replace(periodic_file=path))
    conn.hset(PERIODIC_KEY, "minutely", "0")  # last fired at the epoch: a long downtime since
    due = (time.time() // 60) * 60
    assert scheduler.tick(now=due + 30) == 0  # 30 s late, past expires: skipped, not a thundering herd
    assert float(conn.hget(PERIODIC_KEY, "minutely") or 0) == due and conn.llen("rq:queue:default") == 0
    assert scheduler.tick(now=due + 60 + 4) == 1  # the next one, 4 s late, fires ...
    job_id = conn.lindex("rq:queue:default", 0).decode()  # type: ignore[union-attr]
    expires = json.loads(conn.hget(f"rq:job:{job_id}", "tr_flow") or "{}")["celery"]["expires"]
    assert expires == pytest.approx(due + 60 + 10)  # ... and its job expires 10 s after its occurrence


def test_code_and_setting_schedules_fire_once_per_occurrence_with_two_supervisors_and_a_leader_kill(
    settings: Settings, procs: Processes, tmp_path: Path, conn: redis.Redis
) -> None:
    (tmp_path / "scaling.yaml").write_text(PROFILE)
    beat = {"every 2s": {"task": "tests.tasks_sched.tick", "schedule": 2, "args": ["setting"]}}
    env = {"TASKRAIL_IMPORTS": "tests.tasks_periodic_api", "TASKRAIL_BEAT_SCHEDULE": json.dumps(beat),
           "TASKRAIL_PERIODIC_FILE": str(tmp_path / "none.yaml")}  # fmt: skip
    command = [str(BIN / "taskrail"), "supervise", "--file", str(tmp_path / "scaling.yaml"), "--profile", "t"]
    for node in ("machine-a", "machine-b"):
        procs.start([*command, "--node", node], env=env, name=f"supervise-{node}")
    wait_for(lambda: len(live_workers(conn)) == 2, 30, what="two workers under two supervisors")
    wait_for(lambda: conn.llen("ticks:code") >= 3 and conn.llen("ticks:setting") >= 1, 20, what="periodic runs")
    leader = conn.get("taskrail:leader")
    assert leader is not None
    os.kill(int(conn.hget(f"rq:worker:{leader.decode()}", "pid") or 0), signal.SIGKILL)
    wait_for(lambda: (conn.get("taskrail:leader") or leader) != leader, 20, what="a new leader")
    runs = conn.llen("ticks:code")
    wait_for(lambda: conn.llen("ticks:code") >= runs + 3, 15, what="runs under the new leader")
    jobs = _periodic_jobs(conn)
    occurrences = Counter((name, at) for name, at, _ in jobs)
    assert max(occurrences.values()) == 1, occurrences  # no occurrence enqueued twice
    assert {name for name, _ in occurrences} == {"code every second", "every 2s"}
    assert all(int(at) % 2 == 0 for name, at in occurrences if name == "every 2s")
    wait_for(lambda: all(conn.hget(f"rq:job:{j}", "status") == b"finished" for _, _, j in jobs), 15, what="runs")
    ran = Counter(float(t) for t in conn.lrange("ticks:code", 0, -1))
    assert len(ran) == conn.llen("ticks:code") >= len([1 for name, _ in occurrences if name == "code every second"])


def test_periodic_check_covers_the_setting_and_code(settings: Settings, env: dict[str, str], tmp_path: Path) -> None:
    beat = {"bad": {"task": "tests.tasks_sched.tick", "schedule": 2, "kwargs": {"kind": 1}}}
    run = subprocess.run(
        [str(BIN / "taskrail"), "periodic", "check"], capture_output=True, text=True, timeout=60,
        env={**env, "TASKRAIL_IMPORTS": "tests.tasks_periodic_api", "TASKRAIL_BEAT_SCHEDULE": json.dumps(beat),
             "TASKRAIL_PERIODIC_FILE": str(tmp_path / "none.yaml")},
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout.startswith("the beat_schedule setting: periodic 'bad': tests.tasks_sched.tick(")
    assert run.stdout.splitlines()[-1].endswith("1 bad schedule(s), skipped by the workers until fixed; 1 OK")
