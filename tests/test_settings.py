"""Settings: defaults, YAML, environment, overrides; every bad value is a ConfigError naming the fix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from config import ConfigError, ConnectionFailed, connect, load_settings
from config.embedded import ensure_server
from config.settings import MAX_PAYLOAD_BYTES_LIMIT, NUMBER_LIMITS, check_port
from scripts.cli import main
from tests.conftest import BIN
from workers.exitcodes import RET_CONFIG


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.redis_url is None and settings.max_payload_bytes == 512 * 1024
    assert settings.imports == ("tasks.emails", "tasks.reports", "tasks.fanout")


def test_sources_later_wins(tmp_path: Path) -> None:
    config = tmp_path / "taskrail.yaml"
    config.write_text("shutdown_timeout_s: 12\nconcurrency: 4\nimports: [a, b]\n")
    env = {"TASKRAIL_CONFIG": str(config), "TASKRAIL_CONCURRENCY": "8", "REDIS_URL": "redis://h:1/2"}
    settings = load_settings(env, log_level="DEBUG")
    assert settings.shutdown_timeout_s == 12 and settings.concurrency == 8
    assert settings.imports == ("a", "b") and settings.redis_url == "redis://h:1/2"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TASKRAIL_CONCURENCY": "2"}, "TASKRAIL_CONCURENCY is not a taskrail setting"),
        ({"TASKRAIL_CONCURRENCY": "many"}, "'concurrency': cannot read 'many'"),
        ({"TASKRAIL_CONCURRENCY": "0"}, "TASKRAIL_CONCURRENCY must be a whole number >= 1, got '0'"),
        ({"TASKRAIL_ISOLATION": "vm"}, "'isolation' must be 'inline' or 'fork'"),
        ({"TASKRAIL_SENTRY_SEND_ARGS": "perhaps"}, "sentry_send_args"),
        ({"REDIS_URL": "localhost:6379"}, "must be a URL like redis://"),
        ({"TASKRAIL_HEARTBEAT_TTL_S": "1"}, "more than twice heartbeat_interval_s"),
    ],
)
def test_bad_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400"])
@pytest.mark.parametrize("name", sorted(NUMBER_LIMITS))
def test_every_numeric_setting_refuses_nan_and_infinity(name: str, value: str) -> None:
    var = f"TASKRAIL_{name.upper()}"
    with pytest.raises(ConfigError, match=f"^(setting '{name}': cannot read|{var} must be a)"):
        load_settings({var: value})


def test_a_nan_heartbeat_names_the_variable_and_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"TASKRAIL_HEARTBEAT_TTL_S": "nan"})
    assert str(info.value).startswith("TASKRAIL_HEARTBEAT_TTL_S must be a finite number of seconds > 0, got 'nan';")
    with pytest.raises(ConfigError, match="TASKRAIL_HEARTBEAT_INTERVAL_S must be a finite number of seconds > 0"):
        load_settings({"TASKRAIL_HEARTBEAT_INTERVAL_S": "nan"})
    with pytest.raises(ConfigError, match="more than twice heartbeat_interval_s"):
        load_settings({"TASKRAIL_HEARTBEAT_INTERVAL_S": "5", "TASKRAIL_HEARTBEAT_TTL_S": "6"})


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("max_payload_bytes", MAX_PAYLOAD_BYTES_LIMIT + 1, MAX_PAYLOAD_BYTES_LIMIT),
        ("result_ttl_s", 0, 10 * 365 * 86400),
        ("failure_ttl_s", 10 * 365 * 86400 + 1, 1),
        ("shutdown_timeout_s", -0.5, 0),
        ("heartbeat_interval_s", 0, 0.1),
        ("heartbeat_ttl_s", 86401, 86400),
        ("max_stalled", -1, 0),
        ("concurrency", 1025, 1024),
        ("max_batch", 0, 10_000),
        ("max_jobs", -1, 0),
        ("max_memory_mb", 2**20 + 1, 2**20),
        ("events_maxlen", 0, 1),
    ],
)
def test_numeric_settings_have_a_range(name: str, bad: float, good: float) -> None:
    with pytest.raises(
        ConfigError, match=f"^TASKRAIL_{name.upper()} must be .* got '{bad}'; set it .* to a value (from|above) "
    ):
        load_settings({f"TASKRAIL_{name.upper()}": str(bad)})
    assert getattr(load_settings({f"TASKRAIL_{name.upper()}": str(good)}), name) == good


def test_yaml_numbers_must_fit_the_field(tmp_path: Path) -> None:
    config = tmp_path / "taskrail.yaml"
    for text, message in [
        ("concurrency: .inf\n", "setting 'concurrency': cannot read inf"),
        ("concurrency: 2.5\n", "setting 'concurrency': cannot read 2.5"),
        ("heartbeat_ttl_s: .nan\n", "TASKRAIL_HEARTBEAT_TTL_S must be a finite number"),
    ]:
        config.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings({"TASKRAIL_CONFIG": str(config)})


def test_an_unwritable_data_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as info:
        ensure_server(blocker / "data", tmp_path / "server.json")
    assert str(info.value).startswith(f"TASKRAIL_DATA_DIR {blocker / 'data'}: cannot create or write this directory")
    assert "set TASKRAIL_DATA_DIR to a writable directory" in str(info.value)
    out = subprocess.run([str(BIN / "taskrail"), "server", "start"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TASKRAIL_DATA_DIR": str(blocker / "data")})  # fmt: skip
    assert out.returncode == RET_CONFIG and "Traceback" not in out.stderr
    assert out.stderr.startswith("taskrail: TASKRAIL_DATA_DIR ")


@pytest.mark.parametrize(
    "argv",
    [["dashboard", "--port", "99999"], ["dashboard", "--port", "-1"], ["metrics", "--port", "0"],
     ["metrics", "--port", "65536"], ["demo", "--port", "70000"]],
)  # fmt: skip
def test_ports_outside_1_to_65535_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == RET_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("taskrail: --port must be a port number from 1 to 65535"), err
    assert f"got {argv[-1]}; pick another port" in err
    assert check_port(0, any_free=True) == 0 and check_port(65535) == 65535


@pytest.mark.parametrize(
    ("text", "message"),
    [("colour: red\n", "unknown setting 'colour'"), ("[1, 2]\n", "expected a mapping"), ("a: [\n", "invalid YAML")],
)
def test_bad_yaml(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings({"TASKRAIL_CONFIG": str(config)})


def test_missing_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the settings file"):
        load_settings({"TASKRAIL_CONFIG": str(tmp_path / "nope.yaml")})


@pytest.mark.parametrize("url", ["redis://:secret@127.0.0.1:1/0", "redis://127.0.0.1:1/0?password=secret"])
def test_unreachable_server_names_the_url(url: str) -> None:
    settings = load_settings({"REDIS_URL": url})
    with pytest.raises(ConnectionFailed) as info:
        connect(settings)
    assert "127.0.0.1:1" in str(info.value) and "secret" not in str(info.value)
    assert "check that the server runs" in str(info.value)


def test_a_url_without_scheme_is_not_echoed() -> None:
    with pytest.raises(ConfigError, match="must be a URL like redis://") as info:
        load_settings({"REDIS_URL": "secret@127.0.0.1:6379"})
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings({"REDIS_URL": "Sup3rS3cretPW"})
    assert "Sup3rS3cretPW" not in str(info.value)


def test_password_protected_server(tmp_path: Path) -> None:
    import subprocess

    from config.embedded import find_server_binary, free_port
    from tests.conftest import wait_for

    port = free_port()
    proc = subprocess.Popen([str(find_server_binary()), "--port", str(port), "--requirepass", "s3cret",
                             "--dir", str(tmp_path), "--save", ""], stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        import redis

        url = f"redis://:s3cret@127.0.0.1:{port}/0"
        wait_for(lambda: _pings(redis, url), 10, what="password server")
        assert connect(load_settings({"REDIS_URL": url})).ping()
        with pytest.raises(ConnectionFailed, match=r"refused the password: check REDIS_URL") as info:
            connect(load_settings({"REDIS_URL": f"redis://:wrong@127.0.0.1:{port}/0"}))
        assert "wrong" not in str(info.value)  # the password itself is never shown
    finally:
        proc.kill()
        proc.wait()


def _pings(redis_module, url: str) -> bool:
    try:
        return bool(redis_module.Redis.from_url(url).ping())
    except redis_module.RedisError:
        return False
