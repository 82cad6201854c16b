"""``taskrail chaos``: jobs through supervised workers under faults, then a count of lost and double-completed jobs."""

from scripts.chaos.check import Findings, check, final_count, leftovers
from scripts.chaos.faults import FaultPlan, Faults
from scripts.chaos.plan import Expected, enqueue_mix
from scripts.chaos.proxy import Proxy
from scripts.chaos.report import format_details, format_table, write_docs, write_findings
from scripts.chaos.run import ChaosOptions, ChaosResult, run_chaos
from scripts.chaos.server import ChaosServer

__all__ = [
    "ChaosOptions",
    "ChaosResult",
    "ChaosServer",
    "Expected",
    "FaultPlan",
    "Faults",
    "Findings",
    "Proxy",
    "check",
    "enqueue_mix",
    "final_count",
    "format_details",
    "format_table",
    "leftovers",
    "run_chaos",
    "write_docs",
    "write_findings",
]
