"""The multihost commands' pure parts: the --rtt list, the scenario table, and the reason given without root.

The scenarios themselves are tests/multihost (marked ``multihost``: ``make multihost`` runs them as root).
"""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from scripts.bench.rtt import parse_rtts
from scripts.cmd_multihost import format_rows
from scripts.multihost import netns


def test_rtt_list_always_starts_with_the_baseline() -> None:
    assert parse_rtts("2,0.5") == (0.0, 0.5, 2.0)
    assert parse_rtts("0") == (0.0,)


@pytest.mark.parametrize(("text", "says"), [("fast", "milliseconds separated by commas"), ("-1", "from 0 to 100"),
                                            (",", "from 0 to 100"), ("500", "from 0 to 100")])  # fmt: skip
def test_a_bad_rtt_list_says_what_to_write(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match="--rtt") as info:
        parse_rtts(text)
    assert says in str(info.value) and "0.5,2" in str(info.value)


def test_the_table_has_a_row_per_scenario_in_order_and_dashes_for_no_figure() -> None:
    rows = [{"scenario": "2. cut", "jobs": 9000, "lost": 0, "double_completed": 0, "recovery_s": 3.2, "throughput": None},
            {"scenario": "1. even", "jobs": 20000, "lost": 0, "double_completed": 0, "recovery_s": None,
             "throughput": 2777}]  # fmt: skip
    lines = format_rows(rows).splitlines()
    assert lines[0] == "| scenario | jobs | lost | double-completed | recovery (s) | throughput (jobs/s) |"
    assert lines[2] == "| 1. even | 20,000 | 0 | 0 | - | 2,777 |"
    assert lines[3] == "| 2. cut | 9,000 | 0 | 0 | 3.2 | - |"


def test_without_root_the_reason_names_root_and_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    reason = netns.unavailable()
    assert reason is not None and "root" in reason and "make multihost" in reason
