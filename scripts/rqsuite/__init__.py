"""``taskrail rq-suite``: RQ's own test suite run with RQ's worker and with ``workers.Worker``, compared."""

from scripts.rqsuite.fetch import fetch_suite, installed_rq_version
from scripts.rqsuite.report import Comparison, Outcome, compare, format_markdown, format_table, read_junit, write_report
from scripts.rqsuite.run import DEFAULT_FILES, SuiteOptions, junit_path, run_suite

__all__ = [
    "DEFAULT_FILES",
    "Comparison",
    "Outcome",
    "SuiteOptions",
    "compare",
    "fetch_suite",
    "format_markdown",
    "format_table",
    "installed_rq_version",
    "junit_path",
    "read_junit",
    "run_suite",
    "write_report",
]
