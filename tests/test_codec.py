"""The one codec of RQ's result entries and the one URL redaction, without a server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from config.urls import redact_url
from tasks.core.protocol import (
    RESULT_FAILED,
    RESULT_RETRIED,
    RESULT_SUCCESS,
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
