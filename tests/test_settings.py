"""Settings: defaults, YAML, environment, overrides; every bad value is a ConfigError naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, ConnectionFailed, connect, load_settings


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
        ({"TASKRAIL_CONCURRENCY": "0"}, "'concurrency' must be positive"),
        ({"TASKRAIL_ISOLATION": "vm"}, "'isolation' must be 'inline' or 'fork'"),
        ({"TASKRAIL_SENTRY_SEND_ARGS": "perhaps"}, "sentry_send_args"),
        ({"REDIS_URL": "localhost:6379"}, "must be a URL like redis://"),
        ({"TASKRAIL_HEARTBEAT_TTL_S": "1"}, "more than twice heartbeat_interval_s"),
    ],
)
def test_bad_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


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
        with pytest.raises(ConnectionFailed, match=r"refused the password|cannot reach"):
            connect(load_settings({"REDIS_URL": f"redis://:wrong@127.0.0.1:{port}/0"}))
    finally:
        proc.kill()
        proc.wait()


def _pings(redis_module, url: str) -> bool:
    try:
        return bool(redis_module.Redis.from_url(url).ping())
    except redis_module.RedisError:
        return False
