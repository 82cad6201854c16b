"""Run RQ's test files both ways (RQ's worker, then ``workers.Worker``), each against a private server of its own."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from config.embedded import EmbeddedServer, process_alive, start_server
from config.errors import ConfigError
from scripts.rqsuite.names import MODE_ENV, MODES, PORT_ENV, TIMEOUT_ENV

__all__ = ["DEFAULT_FILES", "SuiteOptions", "junit_path", "run_suite"]

# The files of RQ's suite that say what a worker does; those missing from an sdist are skipped.
DEFAULT_FILES = (
    "test_worker", "test_job", "test_callbacks", "test_dependencies", "test_retry", "test_commands",
    "test_registry", "test_results", "test_job_dependency", "test_timeouts", "test_worker_registration",
    "test_queue_unique", "test_rate_limit", "test_repeat", "test_group",
)  # fmt: skip


@dataclass(frozen=True)
class SuiteOptions:
    """What to run and where to put it."""

    suite_dir: Path  # RQ's unpacked sdist (holds tests/)
    out_dir: Path  # junit XML per mode and file, logs, the report
    files: tuple[str, ...] = DEFAULT_FILES
    test_timeout_s: int = 60  # one test; a hang fails that test and the run goes on
    file_timeout_s: int = 1200  # one file's pytest process, as a last resort


def junit_path(out_dir: Path, mode: str, name: str) -> Path:
    """Where one file's junit XML for one mode goes."""
    return out_dir / mode / f"{name}.xml"


SITECUSTOMIZE = """# Written by taskrail rq-suite: RQ's tests' subprocesses get the patches its pytest plugin applies.
from scripts.rqsuite.plugin import patch_from_env

patch_from_env()
"""


def _write_site(out_dir: Path) -> Path:
    site = out_dir / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return site


def _env(mode: str, server: EmbeddedServer, suite_dir: Path, site: Path, timeout_s: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        MODE_ENV: mode,
        PORT_ENV: str(server.port),
        TIMEOUT_ENV: str(timeout_s + 5),  # the watchdog, for when pytest-timeout's SIGALRM was taken over
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/4",
        "TASKRAIL_DATA_DIR": str(server.data_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(suite_dir), env.get("PYTHONPATH", "")])),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),  # rqworker, rq
    })  # fmt: skip
    return env


def _run_file(opts: SuiteOptions, mode: str, name: str, env: dict[str, str]) -> None:
    # A worker started by the test (rqworker) imports the test module too, so its own job functions register.
    env = {**env, "TASKRAIL_IMPORTS": f"tests.fixtures,tests.{name},scripts.rqsuite.autoregister"}
    xml = junit_path(opts.out_dir.resolve(), mode, name)
    xml.parent.mkdir(parents=True, exist_ok=True)
    xml.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", f"tests/{name}.py", "-p", "scripts.rqsuite.plugin", "-p", "no:cacheprovider",
           "-q", "-o", "addopts=", f"--junitxml={xml}", f"--timeout={opts.test_timeout_s}",
           "--timeout-method=signal"]  # fmt: skip
    with (opts.out_dir / mode / f"{name}.log").open("w") as log:
        try:
            subprocess.run(cmd, cwd=opts.suite_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                           timeout=opts.file_timeout_s, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            log.write(f"\ntaskrail rq-suite: killed after {opts.file_timeout_s}s\n")


def _run_mode(opts: SuiteOptions, mode: str, server: EmbeddedServer, names: list[str]) -> None:
    env = _env(mode, server, opts.suite_dir, _write_site(opts.out_dir.resolve()), opts.test_timeout_s)
    for name in names:
        started = time.monotonic()
        _run_file(opts, mode, name, env)
        print(f"{mode:8} {name:28} {time.monotonic() - started:6.1f}s", flush=True)


def _stop(server: EmbeddedServer, timeout_s: float = 10.0) -> None:
    os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while process_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _check_test_tools() -> None:
    """pytest and pytest-timeout come with the ``test`` extra, not with taskrail itself."""
    missing = [name for name in ("pytest", "pytest_timeout") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"taskrail rq-suite needs {', '.join(missing)}: pip install -e '.[test]' (make install does)")


def run_suite(opts: SuiteOptions) -> list[str]:
    """Run the files both ways at once (a private server each); returns the file names that exist."""
    _check_test_tools()
    names = [name for name in opts.files if (opts.suite_dir / "tests" / f"{name}.py").exists()]
    servers: list[EmbeddedServer] = []
    try:
        for mode in MODES:  # the server chdirs to its folder: relative paths would break
            servers.append(start_server((opts.out_dir / "server" / mode).resolve(), appendonly=False))
        threads = [
            threading.Thread(target=_run_mode, args=(opts, mode, server, names), daemon=True)
            for mode, server in zip(MODES, servers, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:  # also on SIGTERM (the command turns it into SystemExit)
        for server in servers:
            _stop(server)
    return names
