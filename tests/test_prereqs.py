"""A missing prerequisite skips in a bare pytest and fails under make test (STRICT_TEST_PREREQS=1)."""

from __future__ import annotations

import pytest

from tests.prereqs import STRICT_ENV, require_command, require_module


def test_missing_command_fails_under_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="the no-such-tool-xyz command is missing: apt-get install it"):
        require_command("no-such-tool-xyz", "apt-get install it")


def test_missing_module_skips_in_a_bare_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="the Python module no_such_module_xyz is missing: pip it"):
        require_module("no_such_module_xyz", "pip it")


def test_present_prerequisites_are_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    assert require_module("json", "none").dumps([]) == "[]"
    assert require_command("sh", "none").endswith("/sh")


def test_make_test_runs_strict() -> None:
    from tests.conftest import ROOT

    assert f"{STRICT_ENV}=1 $(BIN)/pytest" in (ROOT / "Makefile").read_text()
