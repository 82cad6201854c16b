"""The chaos run's table, its details, and the marked section of docs/operations.md it replaces."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from config.errors import ConfigError
from scripts.chaos.run import ChaosResult

__all__ = ["DOCS_BEGIN", "DOCS_END", "format_details", "format_table", "write_docs", "write_findings"]

DOCS_BEGIN = "<!-- chaos -->"
DOCS_END = "<!-- /chaos -->"
SHOWN = 5  # job ids shown per kind of problem


def format_table(result: ChaosResult) -> str:
    """The figure as a Markdown table."""
    f = result.findings
    rows = [
        ("jobs", f"{f.jobs:,}"),
        ("worker kills (SIGKILL)", f"{result.kills}"),
        ("worker stops (SIGSTOP past the heartbeat TTL)", f"{result.stops}"),
        ("server restarts", f"{result.restarts}"),
        ("dropped replies", f"{result.dropped}"),
        ("lost", f"{len(f.lost)}"),
        ("double-completed", f"{len(f.double_completed)}"),
        ("executions beyond one (at-least-once)", f"{f.executions_beyond_one} in {f.jobs_run_again} jobs"),
        ("claims, started entries, slots left", f"{len(f.leftovers)}"),
        ("duration", f"{result.duration_s:.0f} s"),
    ]
    lines = ["| what | count |", "|---|---:|", *(f"| {name} | {value} |" for name, value in rows)]
    return "\n".join(lines)


def format_details(result: ChaosResult) -> str:
    """What the table does not show: the mix, examples of each problem, notes."""
    f = result.findings
    mix = ", ".join(f"{n:,} {kind}" for kind, n in result.kinds.items())
    lines = [f"jobs by kind: {mix}"]
    for title, problems in (("lost", f.lost), ("double-completed", f.double_completed)):
        for job_id, why in list(problems.items())[:SHOWN]:
            lines.append(f"{title}: {job_id}: {why}")
        if len(problems) > SHOWN:
            lines.append(f"{title}: ... and {len(problems) - SHOWN} more")
    lines += [f"left behind: {item}" for item in f.leftovers[:SHOWN]]
    if f.events_missing:
        lines.append(f"{f.events_missing} finished jobs have no `completed` event (stream trimmed, or event lost)")
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def write_docs(result: ChaosResult, path: Path) -> None:
    """Replace the text between the chaos markers of ``path`` with the table, the command and the date.

    Raises:
        ConfigError: the file lacks the markers.
    """
    text = path.read_text()
    begin, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if begin < 0 or end < begin:
        raise ConfigError(f"{path}: no {DOCS_BEGIN} ... {DOCS_END} section to replace; add the two markers")
    body = (
        f"\n`{result.options.command}`, {result.finished_at}, on this 2-core machine:\n\n"
        f"{format_table(result)}\n\n"
        f"Jobs by kind: {', '.join(f'{n:,} {kind}' for kind, n in result.kinds.items())}.\n"
    )
    path.write_text(text[: begin + len(DOCS_BEGIN)] + body + text[end:])


def write_findings(result: ChaosResult, path: Path) -> None:
    """Every lost and double-completed job id with its reason, and the counts, as JSON: to grep the logs with."""
    f = result.findings
    data = {
        "command": result.options.command,
        "finished_at": result.finished_at,
        "duration_s": result.duration_s,
        "faults": {"kills": result.kills, "stops": result.stops, "restarts": result.restarts,
                   "dropped_replies": result.dropped},
        "kinds": result.kinds,
        "findings": asdict(f),
        "notes": result.notes,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
