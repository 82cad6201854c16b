"""The one codec of RQ's result entries and the one URL redaction, without a server."""

from __future__ import annotations

import ast
import json
import zlib
from pathlib import Path

import pytest

from config.urls import redact_url
from tasks.core.protocol import (
    DATA_ERRORS,
    DATA_MAX_BYTES,
    MAX_NESTING,
    RESULT_FAILED,
    RESULT_RETRIED,
    RESULT_SUCCESS,
    decode_data,
    decode_exc_string,
    encode_exc_string,
    encode_return_value,
    entry_return_value,
    entry_traceback,
)


def test_result_entries_round_trip() -> None:
    ok = {b"type": RESULT_SUCCESS, b"return_value": encode_return_value({"a": [1, 2]}).encode()}
    assert entry_return_value(ok) == {"a": [1, 2]}
    assert entry_return_value({b"type": RESULT_SUCCESS, b"return_value": encode_return_value(None).encode()}) is None
    failed = {b"type": RESULT_FAILED, b"exc_string": encode_exc_string("Traceback ...\nValueError: x").encode()}
    assert entry_traceback(failed) == "Traceback ...\nValueError: x"
    assert entry_return_value(failed) is None and entry_return_value(None) is None
    retried = {b"type": RESULT_RETRIED, b"exc_string": encode_exc_string("again").encode()}
    assert entry_traceback(retried) == "again" and entry_traceback(None) == "" and entry_traceback(ok) == ""


def nested(depth: int) -> str:
    """Job data whose one argument is ``depth`` lists deep."""
    return '["t",null,[' + "[" * depth + "]" * depth + "],{}]"


def test_decode_data_reads_plain_and_compressed_json() -> None:
    data = json.dumps(["t", None, [1, {"a": [2]}], {"k": "v"}])
    assert decode_data(data) == decode_data(data.encode()) == ("t", [1, {"a": [2]}], {"k": "v"})
    assert decode_data(zlib.compress(data.encode())) == ("t", [1, {"a": [2]}], {"k": "v"})
    assert decode_data(nested(MAX_NESTING))[1][0] == json.loads(nested(MAX_NESTING))[2][0]  # at the limit
    assert decode_data(zlib.compress(b'["t",null,["' + b"x" * (DATA_MAX_BYTES - 20) + b'"],{}]'))[0] == "t"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 900, 100_000])
def test_decode_data_refuses_deep_json_with_a_value_error(depth: int) -> None:
    for raw in (nested(depth), nested(depth).encode(), zlib.compress(nested(depth).encode())):
        with pytest.raises(ValueError, match=f"job data is nested more than {MAX_NESTING + 2} levels deep"):
            decode_data(raw)
    kwargs = '["t",null,[],{"k":' + '{"a":' * depth + "1" + "}" * depth + "}]"
    with pytest.raises(ValueError, match="nested more than"):
        decode_data(kwargs)


def test_decode_data_refuses_a_zlib_bomb_without_inflating_it() -> None:
    packer, chunk = zlib.compressobj(9), b"0" * (1024 * 1024)
    bomb = packer.compress(b'["t",null,["') + b"".join(packer.compress(chunk) for _ in range(400))
    bomb += packer.compress(b'"],{}]') + packer.flush()  # 400 MiB in about 400 KB
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ValueError, match=f"inflates to more than the {DATA_MAX_BYTES}-byte limit"):
        decode_data(bomb)
    with pytest.raises(ValueError, match=f"over the {DATA_MAX_BYTES}-byte limit"):
        decode_data(b'["t",null,["' + b"x" * DATA_MAX_BYTES + b'"],{}]')
    for damaged in (b"\x78\x9c garbage", b"", b"[1, 2]", b'"text"'):
        with pytest.raises(DATA_ERRORS):
            decode_data(damaged)


def test_a_damaged_traceback_reads_as_empty() -> None:
    assert decode_exc_string(b"not base64 of zlib!") == "" and decode_exc_string("") == ""


def test_a_return_value_must_be_json() -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_return_value(float("nan"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://app:hunter2@db:6379", "redis://***@db:6379"),
        ("redis://hunter2@db", "redis://***@db"),
        ("rediss://:p@ss@db", "rediss://***@db"),
        ("app:hunter2@db", "***@db"),
        ("redis://db:6379/0?password=hunter2", "redis://db:6379/0?password=***"),
        ("redis://db/0?ssl_cert_reqs=none&Password=hunter2&db=1", "redis://db/0?ssl_cert_reqs=none&Password=***&db=1"),
        ("redis+sentinel://:hunter2@h1:26379,h2:26379/main", "redis+sentinel://***@h1:26379,h2:26379/main"),
        ("hunter2", "***"),  # not a URL (a password pasted alone): never echoed
        ("redis//:hunter2@db", "***@db"),
        ("redis://:hunter2-db:6379", "redis://***"),  # the "@" forgotten: no host list, not shown
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
    ],
)
def test_urls_lose_their_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_result_does_not_import_groups() -> None:
    """groups.py builds on result.py; the shared pieces (revoke_jobs, the client) live in handles.py."""
    tree = ast.parse((Path(__file__).parents[1] / "tasks/core/result.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "tasks.core.groups" not in imported and "tasks.core.handles" in imported
