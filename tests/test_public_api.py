"""Pins each package's public names: changing one is a deliberate act that updates this file."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "tasks": [
        "AsyncResult", "Client", "ConfigError", "ConnectionFailed", "DeadLetter", "DeadLetters", "EnqueueError",
        "Event", "FlowResult", "GroupResult", "NotSerializable", "PayloadTooLarge", "RateLimit", "Request",
        "ResultTimeout", "RetriesExhausted", "Retry", "STATES", "Signature", "SupervisorError", "Task", "TaskContext",
        "TaskError", "TaskFailed", "TaskNotRegistered", "TaskOptions", "TaskRevoked", "TaskTimeout", "TaskrailError",
        "all_tasks", "chain", "chord", "default_client", "follow_events", "group", "is_paused", "lookup",
        "parse_rate_limit", "pause", "paused_queues", "read_events", "register_callback", "resume", "signature", "task",
        # Celery's names (issue 15)
        "Ignore", "MaxRetriesExceededError", "Reject", "SoftTimeLimitExceeded", "TaskRevokedError", "TimeLimitExceeded",
        "current_task", "send_task", "shared_task",
        # a dead work-horse's failure (issue 14), Celery's name
        "WorkerLostError",
        # Celery's canvas (issue 16)
        "ResultSet", "chunks", "xmap", "xstarmap",
    ],
    "workers": ["Supervisor", "Worker", "build_registry", "duration_percentiles"],
    "config": [
        "Autoscale", "ConfigError", "ConnectionFailed", "EmbeddedServer", "Profile", "QueuePlan", "ScalingFile",
        "Settings", "TaskrailError", "connect", "ensure_server", "load_profile", "load_scaling", "load_settings",
        "redis_url", "start_server", "stop_server",
    ],
    "scripts": [],
    "scripts.bench": [
        "BenchError", "METRICS", "Results", "SYSTEMS", "BenchOptions", "System", "format_table", "rank_block", "ranks",
        "run_bench", "write_chart", "write_json", "write_markdown",
    ],
    "scripts.chaos": [
        "ChaosOptions", "ChaosResult", "ChaosServer", "Expected", "FaultPlan", "Faults", "Findings", "Proxy", "check",
        "enqueue_mix", "final_count", "format_details", "format_table", "leftovers", "run_chaos", "write_docs",
        "write_findings",
    ],
    "scripts.rqsuite": [
        "DEFAULT_FILES", "Comparison", "Outcome", "SuiteOptions", "compare", "fetch_suite", "format_markdown",
        "format_table", "installed_rq_version", "junit_path", "read_junit", "run_suite", "write_report",
    ],
    "workers.dashboard": [
        "ALLOWED_HOSTS_ENV", "AllowedHosts", "AuthConfig", "LINK_ENV", "LINK_TTL_S", "LoginLink", "PASSWORD_ENV",
        "TOKEN_ENV", "check_bind", "create_app", "is_loopback", "link_url", "serve",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_exported_members(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it does not define"


def test_one_error_tree() -> None:
    import tasks

    for name in ("ConfigError", "ConnectionFailed", "EnqueueError", "TaskError", "ResultTimeout", "SupervisorError"):
        assert issubclass(getattr(tasks, name), tasks.TaskrailError)
    assert issubclass(tasks.ResultTimeout, TimeoutError)
    assert issubclass(tasks.TaskNotRegistered, tasks.TaskError)


def test_task_modules_do_not_shadow_the_standard_library() -> None:
    import sys

    from config.settings import DEFAULT_IMPORTS

    for module in DEFAULT_IMPORTS:
        assert module.rsplit(".", 1)[-1] not in sys.stdlib_module_names
